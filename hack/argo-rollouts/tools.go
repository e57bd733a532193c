//go:build tools

// Package tools pins the Argo Rollouts controller that scripts/provision-argo-rollouts.sh builds.
// The build tag keeps this file out of normal builds; `go mod tidy` still sees the import, so
// go.mod/go.sum hold everything the main package needs.
package tools

import (
	_ "github.com/argoproj/argo-rollouts/cmd/rollouts-controller"
)
