#!/usr/bin/env python3
"""Turns iasl's AML output into a C array: aml2c.py IN.aml OUT.c SYMBOL."""
import sys

data = open(sys.argv[1], 'rb').read()
sym = sys.argv[3]
with open(sys.argv[2], 'w') as f:
    f.write('/* Generated from %s by aml2c.py. */\n#include <stddef.h>\n#include <stdint.h>\n' % sys.argv[1].split('/')[-1])
    f.write('extern const uint8_t %s[];\nextern const size_t %s_len;\n' % (sym, sym))
    f.write('const uint8_t %s[] = {\n' % sym)
    for i in range(0, len(data), 12):
        f.write('\t' + ', '.join('0x%02x' % b for b in data[i:i + 12]) + ',\n')
    f.write('};\nconst size_t %s_len = %d;\n' % (sym, len(data)))
