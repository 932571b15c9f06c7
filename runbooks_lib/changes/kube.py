"""kubelet, kubeadm, kubectl from the Kubernetes package repository (pkgs.k8s.io layout), pinned
to the cluster's version and held."""

from __future__ import annotations

from . import Change, NoChange
from .files import unified_diff

PACKAGES = ("kubelet", "kubeadm", "kubectl")
REPO_FILE = {"rhel": "/etc/yum.repos.d/kubernetes.repo",
             "debian": "/etc/apt/sources.list.d/kubernetes.list"}
KEYRING = "/etc/apt/keyrings/kubernetes-apt-keyring.gpg"


def minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def repo_url(template: str, version: str) -> str:
    return template.rstrip("/").replace("{minor}", minor(version))


def render_repo(family: str, url: str) -> str:
    if family == "rhel":
        return ("[kubernetes]\nname=Kubernetes\n"
                f"baseurl={url}/rpm/\nenabled=1\ngpgcheck=1\ngpgkey={url}/rpm/repodata/repomd.xml.key\n"
                "exclude=kubelet kubeadm kubectl cri-tools kubernetes-cni\n")
    return f"deb [signed-by={KEYRING}] {url}/deb/ /\n"


def install_change(family: str, missing: list[str], version: str, url: str, repo_current: str | None
                   ) -> Change | NoChange:
    if not missing:
        return NoChange("kube.packages", f"{', '.join(PACKAGES)} {version} installed")
    want = [*missing, "cri-tools"]
    if family == "rhel":
        pins = " ".join(f"{p}-{version}*" if p in PACKAGES else p for p in want)
        cmds = [f"dnf install -y --disableexcludes=kubernetes {pins}"]
    else:
        pins = " ".join(f"{p}={version}*" if p in PACKAGES else p for p in want)
        cmds = []
        if repo_current is None:
            cmds.append(f"install -d -m 0755 /etc/apt/keyrings && curl -fsSL {url}/deb/Release.key "
                        f"| gpg --dearmor --yes -o {KEYRING}")
        cmds += ["apt-get update -q",
                 f"DEBIAN_FRONTEND=noninteractive apt-get install -y -q {pins}",
                 f"apt-mark hold {' '.join(PACKAGES)}"]
    desired_repo = render_repo(family, url)
    change = Change("kube.packages", f"install {', '.join(missing)} {version} from {url}", cmds)
    if repo_current != desired_repo:
        change.path, change.content = REPO_FILE[family], desired_repo
        change.diff = unified_diff(REPO_FILE[family], repo_current, desired_repo)
    return change
