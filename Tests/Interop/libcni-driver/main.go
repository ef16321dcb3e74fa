// libcni-driver runs a network configuration list through libcni, the Go library runtimes
// (containerd, CRI-O, podman's CNI backend) use, so Berth's tests can drive its plugins the way
// those runtimes do.
//
//	libcni-driver add|check|del <conflist> <containerID> <netns> <ifname>
//
// CNI_PATH lists the plugin directories; BERTH_CAPABILITY_ARGS optionally holds the capability
// arguments as JSON ({"portMappings": [...]}); BERTH_CNI_ARGS optionally holds CNI_ARGS
// ("BERTH_JOIN=web;IgnoreUnknown=1"); BERTH_CACHE_DIR is libcni's result cache. ADD
// prints the result; errors go to stderr with exit status 1.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/containernetworking/cni/libcni"
)

func main() {
	if len(os.Args) != 6 {
		fmt.Fprintln(os.Stderr, "usage: libcni-driver add|check|del <conflist> <containerID> <netns> <ifname>")
		os.Exit(2)
	}
	list, err := libcni.ConfListFromFile(os.Args[2])
	if err != nil {
		fail(err)
	}
	runtime := &libcni.RuntimeConf{ContainerID: os.Args[3], NetNS: os.Args[4], IfName: os.Args[5]}
	if args := os.Getenv("BERTH_CAPABILITY_ARGS"); args != "" {
		if err := json.Unmarshal([]byte(args), &runtime.CapabilityArgs); err != nil {
			fail(err)
		}
	}
	if args := os.Getenv("BERTH_CNI_ARGS"); args != "" {
		for _, pair := range strings.Split(args, ";") {
			key, value, _ := strings.Cut(pair, "=")
			runtime.Args = append(runtime.Args, [2]string{key, value})
		}
	}
	cni := libcni.NewCNIConfigWithCacheDir(strings.Split(os.Getenv("CNI_PATH"), ":"), os.Getenv("BERTH_CACHE_DIR"), nil)
	ctx := context.Background()
	switch os.Args[1] {
	case "add":
		result, err := cni.AddNetworkList(ctx, list, runtime)
		if err != nil {
			fail(err)
		}
		if err := result.Print(); err != nil {
			fail(err)
		}
	case "check":
		err = cni.CheckNetworkList(ctx, list, runtime)
	case "del":
		err = cni.DelNetworkList(ctx, list, runtime)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
