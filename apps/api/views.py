"""The base of every API view: API-key authentication, the per-key throttle, and the
request run inside the key's tenant scope."""

from __future__ import annotations

from rest_framework.views import APIView

from apps.core.scoping import enter_tenant_scope, exit_tenant_scope
from apps.tenants.models import Tenant


class TenantApiView(APIView):
    tenant: Tenant
    _scope_token = None

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authenticates, checks permission and throttle
        self.tenant = request.auth.tenant
        self._scope_token = enter_tenant_scope(self.tenant)

    def dispatch(self, request, *args, **kwargs):
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            # Always leave the scope, even on an unhandled error: the thread serves others next.
            if self._scope_token is not None:
                exit_tenant_scope(self._scope_token)
                self._scope_token = None
