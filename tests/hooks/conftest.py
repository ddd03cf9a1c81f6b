from tests.hooks.hook_support import closed_port_url, make_receiver

__all__ = ["closed_port_url", "make_receiver"]
