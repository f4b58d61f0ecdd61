// Package kubernetes only names the program that scripts/kubernetes-testenv builds, so that
// `go mod tidy` keeps it and all it needs in go.mod and go.sum. It is never compiled itself.

//go:build tools

package kubernetes

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
