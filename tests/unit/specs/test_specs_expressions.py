"""${{...}} expressions and $[[...]] optional fragments in commands."""

from __future__ import annotations

import pytest

from mill.specs import Reference, command_references, render_command
from mill.specs.expressions import check_command, format_literal


def test_command_references_in_order() -> None:
    command = (
        "python a.py --x ${{inputs.x}} $[[--y ${{ inputs.y }}]] $[[inputs.z]] "
        "-o ${{outputs.o}}/f --n ${{name}} ${{search_space.lr}} ${{parent.inputs.a}}"
    )
    assert command_references(command) == [
        Reference("inputs", "x", "${{inputs.x}}"),
        Reference("inputs", "y", "${{ inputs.y }}", optional_fragment=True),
        Reference("inputs", "z", "$[[inputs.z]]", optional_fragment=True),
        Reference("outputs", "o", "${{outputs.o}}"),
        Reference("name", None, "${{name}}"),
        Reference("search_space", "lr", "${{search_space.lr}}"),
        Reference("parent", "inputs.a", "${{parent.inputs.a}}"),
    ]


def test_malformed_expressions_are_reported() -> None:
    refs = command_references("echo ${{}} ${{ unterminated")
    assert [r.kind for r in refs] == ["invalid", "invalid"]
    assert refs[1].text == "${{ unterminated"


def test_render_substitutes_textually_and_drops_unbound_fragments() -> None:
    command = (
        'echo "world" >> ${{outputs.out}}/world.txt && python t.py --lr ${{ inputs.lr }} '
        "$[[--seed ${{inputs.seed}}]]$[[ --tag ${{inputs.tag}}]] $[[inputs.model]] --run ${{name}}"
    )
    rendered = render_command(
        command,
        inputs={"lr": "0.1", "seed": None, "tag": "fast"},
        outputs={"out": "/outputs/out"},
        name="job-1",
    )
    assert rendered == (
        'echo "world" >> /outputs/out/world.txt && python t.py --lr 0.1  --tag fast  --run job-1'
    )


def test_render_keeps_text_that_is_not_an_expression() -> None:
    assert render_command("echo $HOME ${x} $[x] ${{ bad", inputs={}, outputs={}, name="n") == (
        "echo $HOME ${x} $[x] ${{ bad"
    )


@pytest.mark.parametrize(
    "command", ["echo ${{inputs.x}}", "echo ${{outputs.nope}}", "echo ${{search_space.lr}}"]
)
def test_render_refuses_what_it_cannot_render(command: str) -> None:
    with pytest.raises(ValueError):
        render_command(command, inputs={"x": None}, outputs={}, name="n")


def test_literals_render_like_azure() -> None:
    assert [format_literal(v) for v in (True, False, 3, 0.5, "a", None)] == [
        "True",
        "False",
        "3",
        "0.5",
        "a",
        "",
    ]


def test_check_command() -> None:
    problems = check_command(
        "run ${{inputs.a}} ${{inputs.opt}} $[[${{inputs.opt}}]] ${{inputs.b}} ${{outputs.o}} "
        "${{inputs}}",
        {"a": False, "opt": True},
        ["o"],
    )
    assert [(p.message.split(" ")[0], p.text) for p in problems] == [
        ("optional", "${{inputs.opt}}"),
        ("input", "${{inputs.b}}"),
        ("not", "${{inputs}}"),
    ]
