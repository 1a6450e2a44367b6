"""The inference gateway: routing requests to providers per virtual keys and configs."""
