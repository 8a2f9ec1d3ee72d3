"""Serves Keystone's public WSGI application on 127.0.0.1, one request at a
time (Keystone on SQLite with threads answers "database is locked").

scripts/keystone.sh runs it with OS_KEYSTONE_CONFIG_DIR set to the
instance's configuration directory and FERRY_KEYSTONE_PORT set to the port.
Keystone parses sys.argv as its own options, so nothing is passed there.
"""
import os
import sys
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class QuietHandler(WSGIRequestHandler):
    # One line per request on stderr would only fill the log.
    def log_message(self, format, *args):
        pass


def main():
    port = int(os.environ.get("FERRY_KEYSTONE_PORT", "15000"))
    sys.argv = sys.argv[:1]
    from keystone.server import wsgi

    app = wsgi.initialize_public_application()
    server = make_server("127.0.0.1", port, app, WSGIServer, QuietHandler)
    server.serve_forever()


if __name__ == "__main__":
    main()
