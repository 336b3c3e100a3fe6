"""test_gateway_limits.py - what libmicrohttpd refuses by itself, in our envelope

libmicrohttpd answers a request it cannot parse or hold without calling the
gateway (414, 431, 400, 413, 505), with an HTML page of its own. The gateway
puts {"error": ...} in its place (gateway/http.c, MHD_queue_response). Each
case here is sent on a raw socket to a real aq-gateway (no broker is
needed: none of these requests gets that far) and must come back with its
status, Content-Type application/json and the JSON body, never HTML.
"""
import json
import socket

import aqtest


class _NoBroker:
    """A broker endpoint nobody listens on: these requests never reach it."""

    def __init__(self):
        self.client_ep = 'tcp://127.0.0.1:%d' % aqtest.free_port()
        self.certs = None


def _exchange(port, data, timeout=5.0, until_close=False):
    """Sends data; returns (status, headers, body, all bytes) of the one response."""
    s = socket.create_connection(('127.0.0.1', port))
    s.settimeout(timeout)
    try:
        s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the answer may come before all of a huge request is sent
    raw = b''
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            raw += chunk
            head, sep, rest = raw.partition(b'\r\n\r\n')
            if sep and not until_close and b'content-length:' in head.lower():
                length = int(head.lower().split(b'content-length:')[1].split(b'\r\n')[0])
                if len(rest) >= length:
                    break
    except (socket.timeout, ConnectionResetError):
        pass
    s.close()
    head, _, body = raw.partition(b'\r\n\r\n')
    lines = head.decode('latin-1').split('\r\n')
    assert lines[0].startswith('HTTP/1.'), 'no HTTP answer: %r' % raw[:200]
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(':')
        headers[name.strip().lower()] = value.strip()
    return status, headers, body, raw


def _expect(port, request, status, error, twice=False):
    got, headers, body, raw = _exchange(port, request, until_close=twice)
    assert got == status, 'wanted %d, got %d: %r' % (status, got, body[:200])
    assert headers.get('content-type') == 'application/json', headers
    assert b'<html' not in raw.lower(), raw[:400]
    if twice:
        # libmicrohttpd 0.9.75 (and 0.9.76) sends the header block of its
        # answer to a Content-Length it cannot read twice: only the last
        # block is followed by the body
        assert raw.count(b'HTTP/1.1 %d ' % status) == 2, raw[:400]
        body = raw.rpartition(b'\r\n\r\n')[2]
    assert json.loads(body) == {'error': error}, raw[:400]


def test_refusals_of_libmicrohttpd_are_json():
    gw = aqtest.start_gateway(_NoBroker())
    port = gw.port
    key = b'Authorization: Bearer k\r\n'
    # the request line does not fit the connection's memory (16 KiB)
    _expect(port, b'GET /v1/tasks/' + b'a' * 20000 + b' HTTP/1.1\r\nHost: x\r\n\r\n',
            414, 'URI too long')
    # one header too large, and many small ones
    _expect(port, b'GET /v1/tasks HTTP/1.1\r\nHost: x\r\n' + key + b'X-Big: ' + b'z' * 20000 +
            b'\r\n\r\n', 431, 'Request header fields too large')
    _expect(port, b'GET /v1/tasks HTTP/1.1\r\nHost: x\r\n' + key +
            b''.join(b'X-H%d: %s\r\n' % (i, b'v' * 30) for i in range(600)) + b'\r\n',
            431, 'Request header fields too large')
    # malformed: a header line without a colon, a bad version string,
    # Content-Length that is not a number, a chunk size that is not hex
    _expect(port, b'GET /v1/tasks HTTP/1.1\r\nHost: x\r\n' + key + b'no colon here\r\n\r\n',
            400, 'Malformed HTTP request')
    _expect(port, b'GET /v1/tasks HTTX/1.1\r\nHost: x\r\n\r\n', 400, 'Malformed HTTP request')
    _expect(port, b'POST /v1/tasks HTTP/1.1\r\nHost: x\r\n' + key +
            b'Content-Length: 12abc\r\n\r\n', 400, 'Malformed HTTP request', twice=True)
    _expect(port, b'POST /v1/tasks HTTP/1.1\r\nHost: x\r\n' + key +
            b'Transfer-Encoding: chunked\r\n\r\nzz\r\n', 400, 'Malformed HTTP request')
    # sizes beyond what MHD counts: Content-Length and a chunk size over 2^64
    _expect(port, b'POST /v1/tasks HTTP/1.1\r\nHost: x\r\n' + key +
            b'Content-Length: 99999999999999999999999\r\n\r\n', 413, 'Request body too large',
            twice=True)
    _expect(port, b'POST /v1/tasks HTTP/1.1\r\nHost: x\r\n' + key +
            b'Transfer-Encoding: chunked\r\n\r\n' + b'f' * 20 + b'\r\n', 413,
            'Request body too large')
    # HTTP versions MHD does not speak
    _expect(port, b'GET /v1/tasks HTTP/2.0\r\nHost: x\r\n\r\n', 505, 'HTTP version not supported')
    _expect(port, b'GET /v1/tasks HTTP/0.9\r\nHost: x\r\n\r\n', 505, 'HTTP version not supported')
    # and the gateway's own answers are untouched: a 404 with its own message,
    # /healthz (no broker: unreachable) still answers
    _expect(port, b'GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n', 404, 'Not found')
    status, headers, body, _ = _exchange(port, b'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    assert status == 200 and json.loads(body)['status'] == 'ok', body
    gw.proc.check_alive()
