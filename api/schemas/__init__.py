"""The public shapes of the API's answers, one module per resource (the OpenAPI responses).

Store records (frozen dataclasses) validate into these by attribute; where a role may not
see health data the shape says so: a separate model without those fields, or a field
documented as withheld.
"""
