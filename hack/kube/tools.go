//go:build tools

// Package tools pins the Kubernetes control-plane programs that scripts/provision-kube.sh builds.
// The build tag keeps this file out of normal builds; `go mod tidy` still sees the imports, so
// go.mod/go.sum hold everything these main packages need.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
