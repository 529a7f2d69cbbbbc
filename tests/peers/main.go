// Command controlplane is the real Kubernetes control plane for mk8's tests: one multi-call
// binary holding etcd, kube-apiserver and kube-controller-manager, built from their upstream Go
// modules. It picks the component from its first argument (or from the name it was called by):
//
//	controlplane etcd --data-dir ... --listen-client-urls ...
//	controlplane kube-apiserver --etcd-servers ... --secure-port ...
//	controlplane kube-controller-manager --kubeconfig ...
//	controlplane version
//
// Test fixture only: mk8 never ships it.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	"k8s.io/component-base/version"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	component := filepath.Base(os.Args[0])
	args := os.Args
	if component == "controlplane" {
		if len(os.Args) < 2 {
			fmt.Fprintln(os.Stderr, "usage: controlplane etcd|kube-apiserver|kube-controller-manager|version [flags]")
			os.Exit(2)
		}
		component = os.Args[1]
		args = append([]string{component}, os.Args[2:]...)
	}
	// Each upstream main parses os.Args itself.
	os.Args = args
	switch component {
	case "etcd":
		etcdmain.Main(args)
	case "kube-apiserver":
		os.Exit(cli.Run(apiserver.NewAPIServerCommand()))
	case "kube-controller-manager":
		os.Exit(cli.Run(controllermanager.NewControllerManagerCommand()))
	case "version":
		fmt.Println(version.Get().GitVersion)
	default:
		fmt.Fprintf(os.Stderr, "controlplane: unknown component %q\n", component)
		os.Exit(2)
	}
}
