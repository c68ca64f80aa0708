"""Pure view functions: a Trace and the page's state in; numbers, labels, geometry out."""
