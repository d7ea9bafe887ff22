//go:build tools

// Package kwok pins the kwok command of the test control plane. It is a module of its own because each kwok
// release is built against the Kubernetes libraries of its own go.mod (kwok v0.7.0: v0.33), which do not
// compile against the v0.35 libraries the Kubernetes binaries of ../go.mod need.
package kwok

import (
	_ "sigs.k8s.io/kwok/cmd/kwok"
)
