// gocni-driver runs the networks of a CNI configuration directory through containerd's go-cni,
// the library containerd's CRI plugin attaches pods with, set up the way that plugin sets it up:
// the loopback network first, then the first max-conf-num configurations of the directory, at
// least two networks required for Status to be ready.
//
//	gocni-driver setup|check|remove|status <conf dir> <containerID> <netns>
//
// CNI_PATH lists the plugin directories. BERTH_GOCNI_OPTIONS optionally holds what the CRI plugin
// passes per pod, as JSON with go-cni's field names:
//
//	{"Labels": {"K8S_POD_NAME": "web", …}, "PortMappings": [{"HostPort": 8080, "ContainerPort": 80, "Protocol": "tcp"}],
//	 "IPRanges": [{"Subnet": "10.90.7.0/24"}], "BandWidth": {"IngressRate": …}, "DNS": {"Servers": […]}}
//
// setup prints go-cni's result as JSON (interfaces by name with their addresses, DNS, routes);
// status prints "ready" or fails with go-cni's error. Errors go to stderr with exit status 1.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	gocni "github.com/containerd/go-cni"
)

// options is what containerd's CRI plugin derives from a pod's sandbox config.
type options struct {
	Labels       map[string]string
	PortMappings []gocni.PortMapping
	IPRanges     []gocni.IPRanges
	BandWidth    *gocni.BandWidth
	DNS          *gocni.DNS
}

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: gocni-driver setup|check|remove|status <conf dir> <containerID> <netns>")
		os.Exit(2)
	}
	command, confDir, id, netns := os.Args[1], os.Args[2], os.Args[3], os.Args[4]
	// go-cni's loopback network is cniVersion 0.3.1, which has no CHECK, and go-cni 1.1.7 checks
	// every network it loaded: check runs without it (containerd 1.6's CRI never calls Check).
	loaders, minimum := []gocni.Opt{gocni.WithLoNetwork, gocni.WithDefaultConf}, 2
	if command == "check" {
		loaders, minimum = loaders[1:], 1
	}
	network, err := gocni.New(
		gocni.WithMinNetworkCount(minimum),
		gocni.WithPluginConfDir(confDir),
		gocni.WithPluginMaxConfNum(1),
		gocni.WithPluginDir(strings.Split(os.Getenv("CNI_PATH"), ":")),
	)
	if err != nil {
		fail(err)
	}
	// Loading fails on an empty directory; containerd logs that and reports NetworkReady=false
	// through Status, which is what the status command shows too.
	loadErr := network.Load(loaders...)
	if command == "status" {
		if err := network.Status(); err != nil {
			fail(fmt.Errorf("%v (load: %v)", err, loadErr))
		}
		fmt.Println("ready")
		return
	}
	if loadErr != nil {
		fail(loadErr)
	}

	var pod options
	if text := os.Getenv("BERTH_GOCNI_OPTIONS"); text != "" {
		if err := json.Unmarshal([]byte(text), &pod); err != nil {
			fail(err)
		}
	}
	namespaceOptions := []gocni.NamespaceOpts{gocni.WithLabels(pod.Labels)}
	if len(pod.PortMappings) > 0 {
		namespaceOptions = append(namespaceOptions, gocni.WithCapabilityPortMap(pod.PortMappings))
	}
	if len(pod.IPRanges) > 0 {
		namespaceOptions = append(namespaceOptions, gocni.WithCapabilityIPRanges(pod.IPRanges))
	}
	if pod.BandWidth != nil {
		namespaceOptions = append(namespaceOptions, gocni.WithCapabilityBandWidth(*pod.BandWidth))
	}
	if pod.DNS != nil {
		namespaceOptions = append(namespaceOptions, gocni.WithCapabilityDNS(*pod.DNS))
	}

	ctx := context.Background()
	switch command {
	case "setup":
		result, err := network.Setup(ctx, id, netns, namespaceOptions...)
		if err != nil {
			fail(err)
		}
		output, err := json.Marshal(result)
		if err != nil {
			fail(err)
		}
		fmt.Println(string(output))
	case "check":
		err = network.Check(ctx, id, netns, namespaceOptions...)
	case "remove":
		err = network.Remove(ctx, id, netns, namespaceOptions...)
	default:
		err = fmt.Errorf("unknown command %q", command)
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
