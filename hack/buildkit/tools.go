//go:build tools

// Package tools pins the BuildKit daemon and client and the buildx CLI that scripts/provision-buildkit.sh
// builds. The build tag keeps this file out of normal builds; `go mod tidy` still sees the imports, so
// go.mod/go.sum hold everything these main packages need.
package tools

import (
	_ "github.com/docker/buildx/cmd/buildx"
	_ "github.com/moby/buildkit/cmd/buildctl"
	_ "github.com/moby/buildkit/cmd/buildkitd"
)
