"""Variants of an output-size rule such as ``1 + (size + 2 * pad - kernel) // stride``: the rule with one of its
operators replaced by another (a slip, or a mutation tool's). The hidden cases draw sizes on which the variants
give another size than the rule wherever the geometry lets them (grader/cnn/cases.py for the layers,
quiz_variants.py for the quiz), so a variant fails the same cases on every seed.
"""
import operator

OPERATORS = (operator.add, operator.sub, operator.mul, operator.truediv, operator.floordiv, operator.mod,
             operator.pow, operator.or_, operator.and_, operator.xor, operator.lshift, operator.rshift)


def variants(ops):
    """Every operator tuple with one of ``ops`` replaced by another of OPERATORS."""
    return [ops[:i] + (op,) + ops[i + 1:] for i in range(len(ops)) for op in OPERATORS if op is not ops[i]]


def shown(rule, ops, *args):
    """For each of ``variants(ops)``: whether ``rule(variant, *args)`` gives another size than ``rule(ops,
    *args)`` (a float or an error counts: a size that is not an int fails too)."""
    exact = rule(ops, *args)
    found = []
    for variant in variants(ops):
        try:
            value = rule(variant, *args)
        except (ArithmeticError, ValueError):   # a division by 0, a negative shift
            value = None
        found.append(type(value) is not int or value != exact)
    return tuple(found)
