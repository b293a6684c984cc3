"""The openai backend: any OpenAI-compatible chat server (``vllm serve``, SGLang, the OpenAI API for o1 baselines).

Requests go out from an asyncio event loop with at most ``concurrency`` in flight per server (and, if asked, at
most ``requests_per_minute`` started per minute); completions are yielded as responses arrive, so the run layer
stores them while others are in flight. With ``base_urls`` (several servers of the same model, e.g. one
``vllm serve`` per GPU node) the client shards: each server has its own ``concurrency`` workers, all taking the
next request from one queue, so a faster server takes more and every request goes to exactly one server.
Failures are sorted in two:

- transient (HTTP 408/425/429/5xx, timeouts, refused or dropped connections, a truncated body): retried up to
  ``max_retries`` times with exponential backoff and jitter (a server's ``Retry-After`` is honoured, capped);
- the request's or the user's fault (other 4xx: bad parameters, unknown model, prompt too long, 401/403):
  SamplerError at once, with the server's message. An error is never stored as an answer.

Token counts, per sample, counted by the server (never estimated from text):

- ``token_counts="token_ids"`` (vLLM servers; "auto" picks it when ``/models`` says ``owned_by: vllm``): the
  vLLM extension ``return_token_ids`` returns each choice's generated ids; output tokens = their number. Then
  one request asks for a contiguous run of missing samples with ``n`` = run length and ``seed`` = the seed of
  the run's first index (vLLM seeds choice j with seed + j), as the vllm backend does.
- ``token_counts="usage"`` (any server): one request per sample (``n`` = 1, the sample's own seed), so the
  response's ``usage.completion_tokens`` belongs to that one sample. By the OpenAI API's definition
  ``completion_tokens`` already includes the hidden reasoning tokens of o1-style models (reported again in
  ``usage.completion_tokens_details.reasoning_tokens``): output tokens = ``completion_tokens``, reasoning
  included and not added twice. A response whose reasoning tokens exceed its completion tokens is refused.

The stored text is the message content; reasoning text that a server returns separately is not stored (its
tokens are counted). The API key is read from the environment variable ``api_key_env`` (never stored).
"""

from __future__ import annotations

import asyncio
import difflib
import logging
import os
import random
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.samplers.base import SampleRequest, SamplerError, refuse_greedy_repeats, refuse_max_tokens_over
from harness.samplers.vllm import contiguous_runs
from harness.types import Completion, FinishReason, SamplingSpec

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger(__name__)

TOKEN_COUNTS: tuple[str, ...] = ("auto", "token_ids", "usage")
OPENAI_URL = "https://api.openai.com/v1"
_RETRY_STATUS = frozenset({408, 425, 429})
_FINISH_REASONS: dict[str, FinishReason] = {"stop": "stop", "length": "length"}


def backoff_delay(attempt: int, base_s: float, max_s: float, rng: random.Random,
                  retry_after_s: float | None = None) -> float:
    """Seconds to wait before retry number ``attempt`` (0 for the first retry).

    Exponential with "equal jitter": ``cap = min(max_s, base_s * 2**attempt)``, wait in ``[cap/2, cap]``, so
    clients that failed together do not retry together. A server's Retry-After is a floor, capped at max_s.
    """
    cap = min(max_s, base_s * 2.0**attempt)
    delay = cap / 2 + rng.uniform(0, cap / 2)
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, max_s))
    return delay


class _Transient(Exception):
    """A failure worth retrying; ``retry_after_s`` is the server's Retry-After, when it sent one."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class _NotFound(SamplerError):
    """A 404: a wrong base URL or model name (or, for ``/models``, a server that does not list models)."""


@dataclass(frozen=True)
class _Job:
    """One HTTP request: n samples of one problem, indices first..first+n-1, seeds seed..seed+n-1."""

    problem_id: str
    first_index: int
    seed: int
    n: int
    messages: tuple[Mapping[str, str], ...]


def _server_message(response: httpx.Response) -> str:
    """The error message of an OpenAI-style error body ({"error": {"message": ...}}), else the body's start."""
    try:
        data = response.json()
        error = data.get("error", data) if isinstance(data, dict) else data
        message = error.get("message") if isinstance(error, dict) else error
        text = str(message if message else data)
    except ValueError:
        text = response.text
    return " ".join(text.split())[:300] or response.reason_phrase


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers.get("retry-after", ""))
    except ValueError:
        return None  # absent, or an HTTP date (rare); the backoff alone decides then


class OpenAISampler:
    """Sample from an OpenAI-compatible chat completions server (see the module docstring).

    model: the model name the server serves. base_url: up to and including ``/v1`` (None: the OpenAI API).
    base_urls: several servers of the same model instead of base_url (client-side sharding; see the module
    docstring). api_key_env: the environment variable holding the API key (unset: no key is sent, fine for a
    local server). concurrency: requests in flight per server, >= 1. requests_per_minute: a cap on request
    starts, all servers together (None: no cap).
    max_retries: retries per request after a transient failure, >= 0. timeout_s: per attempt.
    backoff_base_s / backoff_max_s: the backoff's first step and ceiling. token_counts: "auto", "token_ids"
    or "usage". max_n_per_request: the most samples one request asks for in "token_ids" mode.
    reasoning_model: an o1-style API model: sends only ``max_completion_tokens`` (no temperature, top_p, seed
    or stop, which such models reject) and so requires temperature 1, top_p 1, no top_k and no stop.
    The constructor asks each server's ``/models``: raises SamplerError when no server listens, the key is
    refused (401/403), the model is not served, or the servers of ``base_urls`` serve it differently.
    """

    name = "openai"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        base_urls: Sequence[str] | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 8,
        requests_per_minute: float | None = None,
        max_retries: int = 6,
        timeout_s: float = 600.0,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 60.0,
        token_counts: str = "auto",
        max_n_per_request: int = 16,
        reasoning_model: bool = False,
    ) -> None:
        for name, value, low in (("concurrency", concurrency, 1), ("max_retries", max_retries, 0),
                                 ("max_n_per_request", max_n_per_request, 1)):
            if not isinstance(value, int) or value < low:
                raise SamplerError(f"{name} must be an integer >= {low}, got {value!r}")
        for name, number in (("timeout_s", timeout_s), ("backoff_base_s", backoff_base_s),
                             ("backoff_max_s", backoff_max_s), ("requests_per_minute", requests_per_minute or 1)):
            if not number > 0:
                raise SamplerError(f"{name} must be > 0, got {number!r}")
        if base_url is not None and base_urls is not None:
            raise SamplerError("give base_url or base_urls, not both")
        if base_urls is not None and (isinstance(base_urls, str) or not base_urls
                                      or len(set(base_urls)) != len(base_urls)):
            raise SamplerError(f"base_urls must be a non-empty list of distinct URLs, got {base_urls!r}")
        if token_counts not in TOKEN_COUNTS:
            raise SamplerError(f"token_counts must be one of {TOKEN_COUNTS}, got {token_counts!r}")
        try:
            import httpx  # noqa: F401
        except ImportError:
            raise SamplerError("the openai backend needs httpx; pip install httpx") from None
        self._model = model
        self._base_urls = [url.rstrip("/") for url in (base_urls or [base_url or OPENAI_URL])]
        self._base_url = self._base_urls[0]  # the one named in messages about the model and settings
        self._api_key_env = api_key_env
        key = os.environ.get(api_key_env)
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._concurrency = concurrency
        self._interval_s = 60.0 / requests_per_minute if requests_per_minute else 0.0
        self._next_start = 0.0
        self._max_retries = max_retries
        self._timeout_s = timeout_s
        self._backoff = (backoff_base_s, backoff_max_s)
        self._max_n = max_n_per_request
        self._reasoning_model = reasoning_model
        self._rng = random.Random()
        self._card, self._server_version = asyncio.run(self._probe())
        auto = "token_ids" if self._card.get("owned_by") == "vllm" else "usage"
        self._token_counts = auto if token_counts == "auto" else token_counts
        self._closed = False

    # -- HTTP ---------------------------------------------------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        import httpx

        return httpx.AsyncClient(
            headers=self._headers, timeout=httpx.Timeout(self._timeout_s, connect=min(10.0, self._timeout_s)),
            limits=httpx.Limits(max_connections=self._concurrency * len(self._base_urls)))

    async def _once(self, client: httpx.AsyncClient, method: str, path: str, body: Any, *,
                    retry_connect: bool, base_url: str) -> Any:
        """One attempt: the decoded JSON of a 2xx answer. Raises _Transient or SamplerError (see module doc)."""
        import httpx

        url = f"{base_url}{path}"
        try:
            response = await client.request(method, url, json=body)
        except httpx.ConnectError as exc:
            if not retry_connect:
                raise SamplerError(f"no server is listening at {base_url} ({exc}); start it "
                                   "(e.g. vllm serve MODEL) or fix --base-url") from None
            raise _Transient(f"cannot connect to {url}: {exc}") from None
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            raise _Transient(f"{type(exc).__name__} from {url}: {exc}") from None
        status = response.status_code
        if status in _RETRY_STATUS or status >= 500:
            raise _Transient(f"{url} answered {status}: {_server_message(response)}", _retry_after(response))
        if status in (401, 403):
            raise SamplerError(f"{url} refused the API key ({status}: {_server_message(response)}); set "
                               f"${self._api_key_env} to a valid key")
        if status == 404:
            raise _NotFound(f"{url} answered 404: {_server_message(response)}; check --base-url (it usually "
                            "ends in /v1) and the model name")
        if status >= 400:
            raise SamplerError(f"{url} answered {status}: {_server_message(response)}")
        try:
            return response.json()
        except ValueError:
            raise _Transient(f"{url} answered {status} with a body that is not JSON (cut off?)") from None

    async def _request(self, client: httpx.AsyncClient, method: str, path: str, body: Any = None, *,
                       what: str, retry_connect: bool = True, base_url: str | None = None) -> Any:
        """``_once`` (on ``base_url``, default the first server) with bounded retries, backoff and the rate
        limit. Raises SamplerError when it gives up."""
        for attempt in range(self._max_retries + 1):
            await self._rate_limit()
            try:
                return await self._once(client, method, path, body, retry_connect=retry_connect,
                                        base_url=base_url or self._base_url)
            except _Transient as exc:
                if attempt == self._max_retries:
                    raise SamplerError(f"gave up on {what} after {attempt + 1} attempts; last error: {exc}") from None
                delay = backoff_delay(attempt, *self._backoff, self._rng, exc.retry_after_s)
                logger.info("%s: %s; retry %d/%d in %.1f s", what, exc, attempt + 1, self._max_retries, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _rate_limit(self) -> None:
        """Space request starts ``60 / requests_per_minute`` seconds apart (no lock: one thread, no await here)."""
        if not self._interval_s:
            return
        now = time.monotonic()
        start = max(now, self._next_start)
        self._next_start = start + self._interval_s
        await asyncio.sleep(start - now)

    async def _probe(self) -> tuple[dict[str, Any], str | None]:
        """Ask every server's ``/models`` that it is up, takes the key and serves the model; the model's card
        and the server version. Servers of one run must serve the model alike (owner, context length)."""
        async with self._client() as client:
            found = [await self._probe_one(client, url) for url in self._base_urls]
        for url, (card, _) in zip(self._base_urls[1:], found[1:], strict=True):
            for key in ("owned_by", "max_model_len"):
                if card.get(key) != found[0][0].get(key):
                    raise SamplerError(f"{url} serves {self._model!r} with {key} {card.get(key)!r} but "
                                       f"{self._base_url} with {found[0][0].get(key)!r}; use identical servers")
        return found[0]

    async def _probe_one(self, client: httpx.AsyncClient, base_url: str) -> tuple[dict[str, Any], str | None]:
        try:
            listing = await self._request(client, "GET", "/models", what="listing the models",
                                          retry_connect=False, base_url=base_url)
        except _NotFound:
            logger.warning("%s has no /models; the model name is checked by the first request", base_url)
            return {}, None
        cards = {str(card.get("id")): card for card in listing.get("data", []) if isinstance(card, dict)}
        if self._model not in cards:
            near = difflib.get_close_matches(self._model, list(cards), n=3) or sorted(cards)[:5]
            raise SamplerError(f"model {self._model!r} is not served at {base_url}; "
                               f"did you mean one of {near}?")
        version = None
        if cards[self._model].get("owned_by") == "vllm":
            try:  # vLLM's /version lives beside /v1; nice to record, not worth failing for
                root = base_url.removesuffix("/v1")
                version = (await client.get(f"{root}/version")).json().get("version")
            except Exception:  # noqa: BLE001
                version = None
        return cards[self._model], version

    # -- sampling -----------------------------------------------------------------------------------------

    def engine_settings(self) -> Mapping[str, Any]:
        """The settings in use, the served model's card (``/models``) and the server version where known."""
        import httpx

        return {
            "base_url": self._base_url,
            "base_urls": list(self._base_urls),
            "model": self._model,
            "served_model": {k: self._card.get(k) for k in ("id", "owned_by", "root", "max_model_len")},
            "server_version": self._server_version,
            "token_counts": self._token_counts,
            "output_tokens": "len(choice.token_ids)" if self._token_counts == "token_ids"
            else "usage.completion_tokens of an n=1 request (reasoning tokens included)",
            "concurrency": self._concurrency,
            "requests_per_minute": 60.0 / self._interval_s if self._interval_s else None,
            "max_retries": self._max_retries,
            "timeout_s": self._timeout_s,
            "backoff_base_s": self._backoff[0],
            "backoff_max_s": self._backoff[1],
            "max_n_per_request": self._max_n,
            "reasoning_model": self._reasoning_model,
            "api_key_env": self._api_key_env,
            "api_key_set": bool(self._headers),
            "httpx_version": httpx.__version__,
        }

    def sample(self, requests: Sequence[SampleRequest], spec: SamplingSpec) -> Iterator[Completion]:
        """Send every requested sample and yield Completions as responses arrive.

        Raises SamplerError at once for settings the server cannot honour (temperature 0 with several samples,
        max_tokens not below the served context, sampling settings an o1-style model rejects); the returned
        iterator raises SamplerError when a request fails for good (completions yielded before are valid).
        """
        if self._closed:
            raise SamplerError("the openai sampler is closed")
        self._check_spec(requests, spec)
        jobs: list[_Job] = []
        for request in requests:
            seeds = dict(zip(request.sample_indices, request.seeds(spec.seed)))
            for first, length in contiguous_runs(request.sample_indices):
                step = self._max_n if self._token_counts == "token_ids" else 1
                for start in range(first, first + length, step):
                    n = min(step, first + length - start)
                    jobs.append(_Job(request.problem.id, start, seeds[start], n, request.messages))
        return self._stream(jobs, spec)

    def _check_spec(self, requests: Sequence[SampleRequest], spec: SamplingSpec) -> None:
        refuse_greedy_repeats(requests, spec)
        context = self._card.get("max_model_len")
        if isinstance(context, int):
            refuse_max_tokens_over(spec, context, whose="served", fix="lower max_tokens")
        if self._reasoning_model and (spec.temperature != 1 or spec.top_p != 1 or spec.top_k != -1 or spec.stop):
            raise SamplerError("an o1-style reasoning model samples at fixed settings: use temperature 1, top_p 1, "
                               "no top_k and no stop strings, so the manifest states what was used")

    def _body(self, job: _Job, spec: SamplingSpec) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self._model, "messages": [dict(m) for m in job.messages],
                                "max_completion_tokens": spec.max_tokens}
        if job.n > 1:
            body["n"] = job.n
        if not self._reasoning_model:
            body.update(temperature=spec.temperature, top_p=spec.top_p, seed=job.seed)
            if spec.top_k != -1:
                body["top_k"] = spec.top_k  # a vLLM/SGLang extension; the OpenAI API refuses it (a clear 400)
            if spec.stop:
                body["stop"] = list(spec.stop)
        if self._token_counts == "token_ids":
            body["return_token_ids"] = True
        return body

    def _stream(self, jobs: Sequence[_Job], spec: SamplingSpec) -> Iterator[Completion]:
        """Run the requests on a private event loop; hand each response's completions out as it arrives.

        The loop runs only while this generator waits for the next response; requests in flight meanwhile just
        wait in their sockets. Leaving early (an error, Ctrl-C) cancels everything still in flight.
        """
        loop = asyncio.new_event_loop()
        client = self._client()
        todo: deque[_Job] = deque(jobs)
        done: asyncio.Queue[list[Completion] | BaseException] = asyncio.Queue()
        workers = [loop.create_task(self._worker(client, todo, done, spec, url))
                   for url in self._base_urls for _ in range(min(self._concurrency, len(jobs)))]
        try:
            for _ in range(len(jobs)):
                item = loop.run_until_complete(done.get())
                if isinstance(item, BaseException):
                    raise item
                yield from item
        finally:
            for worker in workers:
                worker.cancel()
            loop.run_until_complete(asyncio.gather(*workers, return_exceptions=True))
            loop.run_until_complete(client.aclose())
            loop.close()

    async def _worker(self, client: httpx.AsyncClient, todo: deque[_Job],
                      done: asyncio.Queue[list[Completion] | BaseException], spec: SamplingSpec,
                      base_url: str) -> None:
        """Send the queue's next job to ``base_url`` until the queue is empty (one of a server's workers)."""
        while todo:
            job = todo.popleft()
            what = f"problem {job.problem_id} samples {job.first_index}..{job.first_index + job.n - 1}"
            if len(self._base_urls) > 1:
                what += f" at {base_url}"
            try:
                data = await self._request(client, "POST", "/chat/completions", self._body(job, spec), what=what,
                                           base_url=base_url)
                await done.put(self._completions(job, data, spec))
            except Exception as exc:  # noqa: BLE001 - handed to the consumer, who raises it
                await done.put(exc)
                return

    def _completions(self, job: _Job, data: Any, spec: SamplingSpec) -> list[Completion]:
        """The job's completions from a response body. Raises SamplerError for a malformed or unusable answer."""
        where = f"problem {job.problem_id}"
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list) or sorted(c.get("index", -1) for c in choices) != list(range(job.n)):
            raise SamplerError(f"{where}: the server returned {len(choices or [])} choices for n={job.n}")
        usage = data.get("usage") or {}
        self._check_context(usage, spec, where)
        out = []
        for choice in sorted(choices, key=lambda c: c["index"]):
            j = choice["index"]
            reason = _FINISH_REASONS.get(choice.get("finish_reason") or "")
            if reason is None:
                raise SamplerError(f"{where} sample {job.first_index + j}: finish reason "
                                   f"{choice.get('finish_reason')!r} is not an answer; it was not stored")
            token_ids = choice.get("token_ids") if self._token_counts == "token_ids" else None
            if self._token_counts == "token_ids" and not isinstance(token_ids, list):
                raise SamplerError(f"{where}: the server did not return token_ids; use token_counts = 'usage'")
            tokens = len(token_ids) if token_ids is not None else self._usage_tokens(usage, where)
            if tokens is not None and tokens > spec.max_tokens:
                raise SamplerError(f"{where}: {tokens} output tokens exceed max_tokens {spec.max_tokens}; the server "
                                   "ignores max_completion_tokens")
            text = (choice.get("message") or {}).get("content") or ""
            out.append(Completion(job.problem_id, job.first_index + j, job.seed + j, text, tokens, reason,
                                  tuple(token_ids) if token_ids is not None else None))
        return out

    def _check_context(self, usage: Mapping[str, Any], spec: SamplingSpec, where: str) -> None:
        """vLLM's server silently lowers max_tokens to what the context leaves after the prompt; such samples
        would end "length" early, with a smaller budget than the manifest says. Refuse them instead."""
        context, prompt = self._card.get("max_model_len"), usage.get("prompt_tokens")
        if isinstance(context, int) and isinstance(prompt, int) and prompt + spec.max_tokens > context:
            raise SamplerError(f"{where}: prompt ({prompt} tokens) + max_tokens ({spec.max_tokens}) exceeds the "
                               f"served context ({context} tokens); use max_tokens <= {context - prompt}")

    @staticmethod
    def _usage_tokens(usage: Mapping[str, Any], where: str) -> int | None:
        """completion_tokens of an n=1 response: reasoning tokens are already in it (OpenAI's definition)."""
        completion = usage.get("completion_tokens")
        if not isinstance(completion, int):
            logger.warning("%s: the server reported no usage.completion_tokens; output tokens unknown", where)
            return None
        reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
        if reasoning > completion:
            raise SamplerError(f"{where}: usage says {reasoning} reasoning tokens but only {completion} completion "
                               "tokens; the server does not count reasoning tokens the OpenAI way")
        return completion

    def close(self) -> None:
        """Nothing stays open between calls to sample; later calls raise SamplerError."""
        self._closed = True
