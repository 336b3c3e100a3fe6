"""test_vectors.py - the golden vectors in proto/vectors against the Python codec

Each proto/vectors/<name>.json holds one message {"cmd": "TASK_CREATE",
"fields": {...}} and <name>.hex the exact frame (lower-case hex). The
frames were produced by aqtest's encoder, written from the msgpack spec and
proto/aq_proto.h alone; proto/aq_vectors.c checks the C codec against the
same files (aq-selftest -t aq_vectors). Regenerate the .hex files after
adding a vector with:

    /usr/bin/python3 tests/test_vectors.py --write
"""

import glob
import json
import os
import re
import sys

import msgpack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aqtest  # noqa: E402

VECTORS = os.path.join(aqtest.ROOT, 'proto', 'vectors')


def s_vectors():
    """[(name, cmd, fields)] in name order."""
    out = []
    for path in sorted(glob.glob(os.path.join(VECTORS, '*.json'))):
        with open(path, encoding='utf-8') as f:
            doc = json.load(f)
        out.append((os.path.basename(path)[:-5], doc['cmd'], doc['fields']))
    assert out, 'no vectors in %s' % VECTORS
    return out


def s_hex(name):
    with open(os.path.join(VECTORS, name + '.hex')) as f:
        return bytes.fromhex(''.join(f.read().split()))


def test_vectors_encode_to_golden_hex():
    for name, cmd, fields in s_vectors():
        frame = aqtest.encode(cmd, fields)
        golden = s_hex(name)
        assert frame == golden, '%s: encoder gives\n  %s\nvector holds\n  %s' % (
            name, frame.hex(), golden.hex())


def test_vectors_decode_to_their_fields():
    for name, cmd, fields in s_vectors():
        got_cmd, got = aqtest.decode(s_hex(name))
        assert got_cmd == cmd, '%s: decoded command %s, expected %s' % (name, got_cmd, cmd)
        assert got == fields, '%s: decoded fields differ: %r' % (name, got)


def test_encoder_agrees_with_msgpack_python():
    """Same bytes as msgpack-python's packb for the same values: smallest
    integer forms, str8 for 32..255 bytes, float64."""
    samples = [0, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 63 - 1,
               -1, -32, -33, -128, -129, -32768, -32769, -2 ** 31, -2 ** 31 - 1, -2 ** 63,
               1.5, -0.0, '', 'a' * 31, 'a' * 32, 'a' * 255, 'a' * 256, 'a' * 65536,
               'caf\u00e9 \U0001f680', [], list(range(15)), list(range(16)),
               list(range(70000)), {}, {str(i): i for i in range(15)},
               {str(i): i for i in range(16)}, True, False, None]
    for value in samples:
        ours = aqtest.pack(value)
        theirs = msgpack.packb(value, use_bin_type=True)
        assert ours == theirs, 'pack(%r...) = %s, msgpack-python %s' % (
            repr(value)[:40], ours[:16].hex(), theirs[:16].hex())
    for name, cmd, fields in s_vectors():
        assert aqtest.pack(fields) == msgpack.packb(fields, use_bin_type=True), name


def test_every_command_has_a_vector():
    """The Python table equals proto/aq_proto.h's, and each command has a vector."""
    with open(os.path.join(aqtest.ROOT, 'proto', 'aq_proto.h')) as f:
        header = f.read()
    table = {name: int(cmd) for name, cmd in re.findall(r'X \((\w+),\s*(\d+),', header)}
    assert table == aqtest.COMMANDS, 'aq_proto.h table %r differs from aqtest %r' % (
        table, aqtest.COMMANDS)
    version = int(re.search(r'#define AQ_PROTO_VERSION\s+(\d+)', header).group(1))
    assert version == aqtest.VERSION, 'AQ_PROTO_VERSION %d, aqtest %d' % (version, aqtest.VERSION)
    covered = {cmd for _, cmd, _ in s_vectors()}
    missing = sorted(set(table) - covered)
    assert not missing, 'commands without a vector: %s' % ', '.join(missing)


def test_decoder_rejects_malformed_frames():
    good = aqtest.encode('HEARTBEAT', {})
    for frame, why in [(b'\xaa\xa1\x01', 'short'), (b'\xab\xa1\x01\x0f\x80', 'signature'),
                       (b'\xaa\xa1\x02\x0f\x80', 'version'), (b'\xaa\xa1\x01\x63\x80', 'command'),
                       (b'\xaa\xa1\x01\x0f\x91\x01', 'not a map'),
                       (b'\xaa\xa1\x01\x0f\x81\x01\x01', 'integer key'),
                       (b'\xaa\xa1\x01\x0f\x81', 'truncated'), (good + b'\x80', 'trailing')]:
        try:
            aqtest.decode(frame)
        except aqtest.ProtocolError:
            continue
        raise AssertionError('decode accepted a frame with a bad %s: %s' % (why, frame.hex()))


def s_write():
    for name, cmd, fields in s_vectors():
        with open(os.path.join(VECTORS, name + '.hex'), 'w') as f:
            f.write(aqtest.encode(cmd, fields).hex() + '\n')
        print('wrote %s.hex' % name)


if __name__ == '__main__':
    if sys.argv[1:] == ['--write']:
        s_write()
    else:
        print('usage: test_vectors.py --write   (tests run through tests/run.py)')
