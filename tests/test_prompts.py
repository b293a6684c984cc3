"""Prompt templates: rendered literally, hashed, validated."""

import pytest

from harness.prompts import PromptError, available_prompts, load_prompt


def test_default_prompt_renders_question_and_instruction():
    template = load_prompt("default")
    (user,) = template.messages(r"Find $\frac{1}{2}$ of {x}.")
    assert user["role"] == "user"
    assert user["content"] == "Find $\\frac{1}{2}$ of {x}.\nPlease reason step by step, and put your final answer within \\boxed{}."


def test_qwen_prompt_uses_system_turn():
    system, user = load_prompt("qwen25-math").messages("Q")
    assert system == {"role": "system", "content": "Please reason step by step, and put your final answer within \\boxed{}."}
    assert user == {"role": "user", "content": "Q"}


def test_hash_changes_with_text_and_is_stable():
    a, b = load_prompt("default"), load_prompt("qwen25-math")
    assert a.sha256 != b.sha256 and a.sha256 == load_prompt("default").sha256 and len(a.sha256) == 64


def test_bundled_prompts_all_load():
    assert {"default", "qwen25-math", "deepseek-r1"} <= set(available_prompts())
    for name in available_prompts():
        assert load_prompt(name).name == name


def test_unknown_prompt_and_bad_files(tmp_path):
    with pytest.raises(PromptError, match="did you mean 'default'"):
        load_prompt("defualt")
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nversion = "1"\nuser = "no placeholder"\n')
    with pytest.raises(PromptError, match="exactly once"):
        load_prompt(str(bad))
    bad.write_text('name = "x"\nversion = "1"\nuser = "{question}"\ntemprature = 1\n')
    with pytest.raises(PromptError, match="unknown key"):
        load_prompt(str(bad))
