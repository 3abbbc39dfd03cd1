"""Answer extraction and grading of GSM8K and MATH on the hard cases."""

from __future__ import annotations

import pytest

from mdsample.plugins.text.tasks.answers import (
    gsm8k_answer,
    gsm8k_gold,
    math_answer,
    math_equal,
    math_gold,
    normalize_math,
    numbers_equal,
)


@pytest.mark.parametrize(("completion", "expected"), [
    ("She pays 3 * 6 = 18 dollars. The final answer is 18.", "18"),
    ("The final answer is $1,234.50 dollars.", "1234.5"),  # commas, units, $ and trailing zeros
    ("so it drops by 7 degrees.\nThe final answer is -7", "-7"),  # negatives
    ("The final answer is \\boxed{72}", "72"),
    ("Thus the answer is \\boxed{\\$1,080} in total", "1080"),
    ("First 12 apples, then 30 more: 42 apples", "42"),  # no marker: the last number
    ("The answer is 5 apples, not 6.", "5"),  # after "answer is": the first number
    ("I cannot tell.", ""),
    ("Total: 3.000", "3"),
])
def test_gsm8k_answers(completion, expected):
    assert gsm8k_answer(completion) == expected


def test_gsm8k_gold_and_numeric_equality():
    assert gsm8k_gold("Natalia sold 48/2 = 24 clips.\n#### 1,072") == "1072"
    assert gsm8k_gold("#### -3") == "-3"
    assert numbers_equal("18.0", "18") and numbers_equal("-0.50", "-0.5")
    assert not numbers_equal("", "") and not numbers_equal("17", "18")


@pytest.mark.parametrize(("completion", "expected"), [
    ("so $x = \\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}"),
    ("first \\boxed{3} then \\boxed{\\sqrt{2}}", "\\sqrt{2}"),  # the last box, nested braces kept
    ("The final answer is $\\dfrac{3}{4}$.", "\\dfrac{3}{4}"),
    ("area 12 and perimeter 14", "14"),
])
def test_math_extraction(completion, expected):
    assert math_answer(completion) == expected


@pytest.mark.parametrize(("predicted", "gold"), [
    ("\\dfrac{1}{2}", "\\frac12"),
    ("0.5", "\\frac{1}{2}"),
    ("1/2", "\\frac{1}{2}"),
    ("-\\frac{3}{4}", "-0.75"),
    ("10\\%", "10"),
    ("90^\\circ", "90"),
    ("5 \\text{ cm}", "5"),
    ("x = 3", "3"),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})"),
    ("1,000", "1000"),
    ("\\$5.00", "5"),
    ("\\sqrt2", "\\sqrt{2}"),
])
def test_math_equivalent_forms(predicted, gold):
    assert math_equal(predicted, gold)


@pytest.mark.parametrize(("predicted", "gold"), [
    ("\\frac{1}{3}", "\\frac{1}{2}"), ("", "0"), ("(1,2)", "[1,2]"), ("2", "-2"), ("\\sqrt{3}", "\\sqrt{2}"),
])
def test_math_different_answers(predicted, gold):
    assert not math_equal(predicted, gold)


def test_math_gold_from_a_solution():
    assert math_gold("We get $\\boxed{\\frac{\\sqrt{3}}{2}}$.") == "\\frac{\\sqrt{3}}{2}"
    assert normalize_math("\\text{(C)}") == "(C)"
