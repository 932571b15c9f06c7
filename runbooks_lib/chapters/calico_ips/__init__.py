"""Chapter calico-ips."""
