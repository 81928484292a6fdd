"""What the orchestrator tells the layers above it, which it cannot import."""

from django.dispatch import Signal

# Sent inside the transaction that restores a deployment after a failed upgrade, with `deployment`
# holding the template and inputs it runs again.
deployment_rolled_back = Signal()
