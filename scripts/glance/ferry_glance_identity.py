"""A paste filter for ferry's Glance tests: it stands where Keystone's
auth_token middleware would, and sets the identity headers that middleware
sets (X-Identity-Status, X-Project-Id, X-User-Id, X-Roles) from headers the
test chooses, so that Glance's ContextMiddleware, next in the pipeline, builds
a context with a project and roles. Loopback test servers only: it trusts the
caller completely.

Request headers read (all optional):
  X-Ferry-Test-Project  the project id (default: DEFAULT_PROJECT)
  X-Ferry-Test-User     the user id (default: "<project>-user")
  X-Ferry-Test-Roles    comma-separated roles (default: "member,reader")
"""

DEFAULT_PROJECT = '6c2a1e0f9b6a4c4f8b7e1d2c3a4b5c6d'
DEFAULT_ROLES = 'member,reader'

# What a client could send to pass for someone else; Keystone's middleware
# removes these too before it sets its own.
_IDENTITY = ('HTTP_X_IDENTITY_STATUS', 'HTTP_X_PROJECT_ID', 'HTTP_X_TENANT_ID',
             'HTTP_X_USER_ID', 'HTTP_X_ROLES', 'HTTP_X_SERVICE_CATALOG',
             'HTTP_X_PROJECT_NAME', 'HTTP_X_USER_NAME', 'HTTP_X_AUTH_TOKEN')


def _clean(value, default):
    value = (value or '').strip()
    if not value or len(value) > 255:
        return default
    return value


class IdentityFromTestHeaders(object):
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        project = _clean(environ.get('HTTP_X_FERRY_TEST_PROJECT'), DEFAULT_PROJECT)
        user = _clean(environ.get('HTTP_X_FERRY_TEST_USER'), project + '-user')
        roles = _clean(environ.get('HTTP_X_FERRY_TEST_ROLES'), DEFAULT_ROLES)
        for key in _IDENTITY:
            environ.pop(key, None)
        environ['HTTP_X_IDENTITY_STATUS'] = 'Confirmed'
        environ['HTTP_X_PROJECT_ID'] = project
        environ['HTTP_X_USER_ID'] = user
        environ['HTTP_X_ROLES'] = roles
        return self.app(environ, start_response)


def filter_factory(global_conf, **local_conf):
    def make(app):
        return IdentityFromTestHeaders(app)
    return make
