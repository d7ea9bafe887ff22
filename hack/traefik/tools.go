//go:build tools

// Package traefik pins the Traefik command that the Gateway API data-plane tests run.
// Nothing here is compiled into Croupier.
package traefik

import (
	_ "github.com/traefik/traefik/v3/cmd/traefik"
)
