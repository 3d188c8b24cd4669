import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import reverse

from apps.core.wsgi import application as with_machine_stack

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
# Pages get settings.MIDDLEWARE; the API, /graph/ and the providers' webhooks the short
# settings.MACHINE_MIDDLEWARE (apps/core/wsgi.py).
application = with_machine_stack(get_wsgi_application())

# Import every view and build the URL maps now, as each web server process starts, rather than
# on its first request, which took most of a second.
reverse("healthz")

# Everything loaded so far lives as long as the process. Frozen, the cyclic collector never walks
# it again, so a full collection no longer pauses a request for tens of milliseconds.
gc.collect()
gc.freeze()
