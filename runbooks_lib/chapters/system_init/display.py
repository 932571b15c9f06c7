"""What notebook 01 shows: the compliance matrix, per-node changes, rendered reference files.

Everything shown passes the run's redactor first (diffs of node files can hold credentials)."""

from __future__ import annotations

import html
from dataclasses import replace

from ... import display
from ...changes import containerd as containerd_c
from ...changes import modules as modules_c
from ...changes import sysctl as sysctl_c
from ...facts.modules import K8S_FILE
from ...redact import default_redactor
from .checks import BRIDGE_KEYS, Desired
from .steps import Result, applied_text, changes_text


def matrix_html(result: Result) -> str:
    """checks x nodes, each cell a coloured badge (detail in the tooltip)."""
    df = result.matrix()
    redact = default_redactor().redact
    details = {(fd.check, h): redact(fd.detail) for h, nr in result.nodes.items() for fd in nr.findings}
    head = "<th style='text-align:left'>check</th>" + "".join(
        f"<th style='text-align:left'>{html.escape(str(c))}</th>" for c in df.columns)
    rows = []
    for check, row in df.iterrows():
        cells = "".join(
            f"<td title='{html.escape(details.get((str(check), str(h)), ''), quote=True)}'>"
            f"{display.badge(str(v)) if v else ''}</td>" for h, v in row.items())
        rows.append(f"<tr><td style='text-align:left'>{html.escape(str(check))}</td>{cells}</tr>")
    return (f"<table class='runbooks-table'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def show_matrix(result: Result, title: str) -> None:
    display._show(f"<h4>{html.escape(title)} ({result.wall_s:.1f} s, {len(result.nodes)} nodes)</h4>")
    display._show(matrix_html(result))


def show_details(result: Result, only_problems: bool = True) -> None:
    df = result.findings_frame()
    df["detail"] = df["detail"].map(default_redactor().redact)
    if only_problems:
        df = df[~df["status"].isin(["pass", "n/a", "info"])]
    display.table(df.reset_index(drop=True), "Details" + (" (not passing)" if only_problems else ""))


def change_groups(result: Result) -> list[tuple[list[str], str]]:
    """Each distinct change block once with the hosts it applies to, in first-seen order; nodes
    with an error keep their own line, nodes with nothing to do are one "no changes" group."""
    groups: dict[str, list[str]] = {}
    for host, nr in result.nodes.items():
        if result.mode == "apply":
            blocks = [applied_text(replace(nr, applied=[a])).split("\n", 1)[1] for a in nr.applied]
        else:
            blocks = [c.describe() for c in nr.planned]
        if nr.error:
            blocks = [changes_text(nr).removeprefix(f"{host}: ")]
        for block in blocks or ["no changes"]:
            groups.setdefault(block, []).append(host)
    return [(hosts, block) for block, hosts in groups.items()]


def show_changes(result: Result) -> None:
    """One block per distinct change (diff coloured), headed by the hosts it applies to."""
    redact = default_redactor().redact
    parts = []
    for hosts, block in change_groups(result):
        text = redact(block)
        body = display.diff_html(text) if display.looks_like_diff(text) else (
            f"<pre style='white-space:pre-wrap;margin:0'>{html.escape(text)}</pre>")
        parts.append(f"<div style='margin:0.4em 0'><b>{html.escape(', '.join(hosts))}</b> "
                     f"({len(hosts)} of {len(result.nodes)} nodes)</div>{body}")
    display._show("".join(parts))  # one output (one scroll box in the report), not one per group


def reference_files(d: Desired) -> dict[str, str]:
    """Files as rendered for a node with br_netfilter present and no operator-raised values
    (what does not depend on host state)."""
    exact = {"net.ipv4.ip_forward": "1", **{k: "1" for k in BRIDGE_KEYS}, "vm.swappiness": "0",
             **d.settings.sysctl_extra}
    values = sysctl_c.desired_values(exact, d.settings.sysctl_minimum, {}, {})
    return {
        sysctl_c.PATH: sysctl_c.render(values),
        K8S_FILE: modules_c.render(d.modules),
        "/etc/crictl.yaml": containerd_c.render_crictl(containerd_c.crictl_desired(d.settings.containerd_socket)),
    }


def print_reference_files(d: Desired) -> None:
    """Plain text (deterministic, for # NBVAL_CHECK_OUTPUT)."""
    for path, text in reference_files(d).items():
        print(f"--- {path}")
        print(text, end="")
    print(f"--- containerd: sandbox image {d.sandbox_image}, SystemdCgroup = true, CRI plugin enabled")
    print(f"--- kube-proxy mode {d.proxy_mode}: modules {', '.join(d.modules)}")
