"""Chapter 02 kubeadm: config, preflight, HA endpoint, PKI audit, init/join (apply), verify.

Pure modules: settings, config (render), schema (offline validation), consistency, preflight, pki, parse
(kubeadm output), ha, actions. Steps: nodes (SSH), verify (API). chapter.py records checks and figures.
"""

from .chapter import (
    Result,
    Survey,
    audit_pki,
    ha_endpoint,
    plan,
    plan_actions,
    plan_config,
    record_existing,
    record_preflight,
    record_verify,
    render_config,
    survey,
)

__all__ = ["Result", "Survey", "audit_pki", "ha_endpoint", "plan", "plan_actions", "plan_config",
           "record_existing", "record_preflight", "record_verify", "render_config", "survey"]
