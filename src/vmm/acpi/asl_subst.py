#!/usr/bin/env python3
"""Fills platform addresses into the DSDT source: asl_subst.py IN.asl OUT.asl HEADER...

Every `@EXPR@` in IN.asl is replaced by the value (hex) of EXPR, an integer
expression over the plain numeric #defines of the HEADERs (include/platform.h,
include/acpi_ged.h; for
example `@PCI_MMIO32_BASE + PCI_MMIO32_SIZE - 1@`), so the DSDT cannot drift
from the addresses the rest of skiff uses. An unknown name is an error.
"""
import ast
import operator
import re
import sys

OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
       ast.FloorDiv: operator.floordiv, ast.LShift: operator.lshift}


def read_defines(path):
    defs = {}
    for line in open(path):
        m = re.match(r'\s*#define\s+([A-Z0-9_]+)\s+(0[xX][0-9a-fA-F]+|[0-9]+)[uUlL]*\s*(/[*/].*)?$', line)
        if m:
            defs[m.group(1)] = int(m.group(2), 0)
    return defs


def evaluate(expr, defs):
    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.BinOp) and type(node.op) in OPS:
            return OPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in defs:
                raise SystemExit(f'asl_subst.py: {node.id} is not a numeric #define of the headers')
            return defs[node.id]
        raise SystemExit(f'asl_subst.py: unsupported expression @{expr}@')
    return ev(ast.parse(expr.strip(), mode='eval'))


def main():
    defs = {}
    for header in sys.argv[3:]:
        defs.update(read_defines(header))
    src = open(sys.argv[1]).read()
    out = re.sub(r'@([A-Za-z0-9_ +\-*/<x]+)@', lambda m: '0x%X' % evaluate(m.group(1), defs), src)
    if '@' in re.sub(r'/\*.*?\*/', '', out, flags=re.S):
        raise SystemExit('asl_subst.py: an @...@ placeholder was left unreplaced')
    with open(sys.argv[2], 'w') as f:
        f.write(f'/* Generated from {sys.argv[1].split("/")[-1]} by asl_subst.py: do not edit. */\n')
        f.write(out)


if __name__ == '__main__':
    main()
