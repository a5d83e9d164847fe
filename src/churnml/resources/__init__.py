"""Files that ship with churnml: the built-in playbooks."""
