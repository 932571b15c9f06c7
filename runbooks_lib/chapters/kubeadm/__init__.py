"""Chapter kubeadm."""
