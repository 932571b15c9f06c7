"""Chapter openebs-storage."""
