"""Reading and checking final answers of GSM8K and MATH completions, as the KLASS evaluation does.

GSM8K: the gold answer follows ``####``; a completion's answer is the number after its last "answer is" (or inside
its ``\\boxed{}``), else its last number. Commas inside numbers, ``$`` signs, units and a trailing ``.`` are dropped
and decimals lose trailing zeros, so ``$1,234.50 dollars`` reads ``1234.5``.

MATH: the answer is the content of the last ``\\boxed{...}`` (braces balanced), else what follows "answer is", else
the last word holding a digit. Both sides are normalised the way Hendrycks' MATH checker does (``\\dfrac`` ->
``\\frac``, ``\\frac12`` -> ``\\frac{1}{2}``, ``a/b`` -> ``\\frac{a}{b}``, no ``\\left``/``\\right``, units in
``\\text{}``, degrees, ``$``, spaces), then compared as strings, and, where both are plain numbers or fractions,
as exact rationals (``\\frac{1}{2}`` equals ``0.5``); tuples and intervals compare element by element.
"""

from __future__ import annotations

import re
from fractions import Fraction

NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _plain_number(text: str) -> str:
    """``1234.500`` -> ``1234.5``, ``72.0`` -> ``72``; anything else as it is."""
    if re.fullmatch(r"-?\d+\.\d+", text):
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def gsm8k_gold(solution: str) -> str:
    """The number after ``####`` in a GSM8K solution ("" if there is none)."""
    found = re.search(r"####\s*(-?[\d.,]+)", solution)
    return _plain_number(found[1].replace(",", "").rstrip(".")) if found else ""


def gsm8k_answer(completion: str) -> str:
    """The number a completion gives as its answer ("" if it gives none), see the module docstring."""
    parts = completion.split("answer is")
    tail = parts[-1]
    boxed = boxed_contents(tail)
    if boxed:
        inside = boxed[0].replace(",", "")
        number = NUMBER.search(inside)
        return _plain_number(number[0]) if number else inside.strip()
    numbers = NUMBER.findall(re.sub(r"(?<=\d),(?=\d{3})", "", tail))
    if not numbers:
        return ""
    return _plain_number(numbers[0] if len(parts) > 1 else numbers[-1])


def numbers_equal(a: str, b: str) -> bool:
    """GSM8K correctness: equal as exact decimals (``18`` == ``18.0``), or equal strings when not numbers."""
    try:
        return Fraction(a) == Fraction(b)
    except (ValueError, ZeroDivisionError):
        return a != "" and a == b


# ------------------------------------------------------------------------------------------------------------ MATH


def boxed_contents(text: str) -> list[str]:
    """The contents of every ``\\boxed{...}`` / ``\\fbox{...}`` in ``text``, nested braces kept, in order."""
    out = []
    for match in re.finditer(r"\\(?:boxed|fbox)\s*\{", text):
        depth, start = 1, match.end()
        for i in range(start, len(text)):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                out.append(text[start:i])
                break
    return out


def math_gold(solution: str) -> str:
    """The answer of a MATH solution: its last ``\\boxed{}``."""
    boxed = boxed_contents(solution)
    return boxed[-1] if boxed else solution.strip()


def math_answer(completion: str) -> str:
    """The answer a completion gives to a MATH problem ("" if none), see the module docstring."""
    boxed = boxed_contents(completion)
    if boxed:
        return boxed[-1].strip()
    if "answer is" in completion:
        tail = completion.split("answer is")[-1].strip()
        tail = re.split(r"\.\s|\.\n|\n\n", tail)[0]
        return tail.strip().strip(":").strip().rstrip(".").strip("$").strip()
    words = [w for w in completion.split() if re.search(r"\d", w)]
    return words[-1].strip(".,;:$") if words else ""


def _fix_fracs(text: str) -> str:
    """``\\frac12`` -> ``\\frac{1}{2}``, ``\\frac1{7}`` -> ``\\frac{1}{7}``."""
    text = re.sub(r"\\frac(\d)(\d)", r"\\frac{\1}{\2}", text)
    text = re.sub(r"\\frac(\d)\{", r"\\frac{\1}{", text)
    return re.sub(r"\\frac\{([^{}]*)\}(\d)", r"\\frac{\1}{\2}", text)


def normalize_math(answer: str) -> str:
    """Hendrycks-style normal form of a MATH answer (see the module docstring)."""
    s = answer.strip().replace("\n", "").rstrip(".")
    s = s.replace("\\!", "").replace("\\,", "").replace("\\;", "").replace("\\ ", "")
    s = re.sub(r"\\[dtc]frac", r"\\frac", s)
    s = s.replace("\\left", "").replace("\\right", "")
    s = re.sub(r"\^\s*\{?\\circ\}?", "", s).replace("°", "")
    s = s.replace("\\$", "").replace("$", "")
    s = re.sub(r"\\(?:text|textbf|mbox|mathrm)\{\s*[a-zA-Z ]*\}\s*$", "", s) or s  # a trailing unit
    s = re.sub(r"\\(?:text|textbf|mbox|mathrm|mathbf)\{([^{}]*)\}", r"\1", s)
    s = s.replace("\\%", "").replace("%", "")
    s = re.sub(r"^[a-zA-Z]\s*=\s*", "", s)  # x = 5 -> 5
    s = s.replace(" ", "")
    s = re.sub(r"(?<![\d}])\.(\d)", r"0.\1", s)  # .5 -> 0.5
    s = re.sub(r"(\d),(?=\d{3}(?!\d))", r"\1", s)  # 1,000 -> 1000
    s = re.sub(r"\\sqrt(\w)", r"\\sqrt{\1}", s)
    s = _fix_fracs(s)
    if re.fullmatch(r"-?\d+/\d+", s):
        num, den = s.split("/")
        s = f"\\frac{{{num}}}{{{den}}}"
    s = re.sub(r"(\d+)\.0+(?!\d)", r"\1", s)
    return s


def _rational(s: str) -> Fraction | None:
    """An exact value for a normalised plain number or (signed) ``\\frac{a}{b}``; None otherwise."""
    m = re.fullmatch(r"(-?)\\frac\{(-?\d+)\}\{(-?\d+)\}", s)
    try:
        if m:
            value = Fraction(int(m[2]), int(m[3]))
            return -value if m[1] else value
        return Fraction(s) if re.fullmatch(r"-?\d+(?:\.\d+)?", s) else None
    except ZeroDivisionError:
        return None


def _split_top(s: str) -> list[str]:
    """Split at commas outside braces/brackets: ``(1,\\frac{1}{2})`` -> [``1``, ``\\frac{1}{2}``]."""
    parts, depth, cur = [], 0, ""
    for ch in s:
        depth += ch in "{([" and 1 or ch in "})]" and -1 or 0
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [*parts, cur]


def math_equal(predicted: str, gold: str) -> bool:
    """Whether two MATH answers are equivalent after normalisation (strings, exact rationals, tuples)."""
    a, b = normalize_math(predicted), normalize_math(gold)
    if not a:
        return False
    if a == b:
        return True
    ra, rb = _rational(a), _rational(b)
    if ra is not None and rb is not None:
        return ra == rb
    brackets = re.fullmatch(r"([(\[])(.*)([)\]])", a), re.fullmatch(r"([(\[])(.*)([)\]])", b)
    if all(brackets) and brackets[0][1] + brackets[0][3] == brackets[1][1] + brackets[1][3]:
        a, b = brackets[0][2], brackets[1][2]
    pa, pb = _split_top(a), _split_top(b)
    if len(pa) > 1 and len(pa) == len(pb):
        return all(math_equal(x, y) for x, y in zip(pa, pb, strict=True))
    return False
