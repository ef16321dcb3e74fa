// cri-client speaks the Kubernetes CRI (runtime.v1.RuntimeService) to a containerd socket, the
// calls the kubelet makes to run a pod, so the tests can drive containerd's CRI plugin the way a
// node does. Debian packages neither crictl nor the CRI's Go API, so the messages are encoded
// here with protowire (field numbers from k8s.io/cri-api's api.proto) and sent as raw bytes.
//
//	cri-client <socket> status                       NetworkReady as JSON {"ready": …, "reason": …, "message": …}
//	cri-client <socket> runp <name> [options]        runs a pod sandbox, prints its ID
//	    --port host:container[/udp]                  a hostPort mapping (repeatable)
//	    --host-network                               the node's network namespace (hostNetwork: true)
//	cri-client <socket> inspectp <pod ID>            {"state": …, "ip": …, "netns": …} as JSON
//	cri-client <socket> stopp|rmp <pod ID>           StopPodSandbox, RemovePodSandbox
//	cri-client <socket> run <pod ID> <name> <image> <command…>
//	                                                 creates and starts a container in the pod, prints its ID
//	cri-client <socket> stop|rm <container ID>       StopContainer (no grace), RemoveContainer
//
// Errors go to stderr with exit status 1.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"
)

// rawCodec passes already encoded messages through gRPC unchanged.
type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// message builds a protobuf message field by field.
type message []byte

func (m message) str(field protowire.Number, value string) message {
	m = protowire.AppendTag(m, field, protowire.BytesType)
	return protowire.AppendString(m, value)
}

func (m message) sub(field protowire.Number, value message) message {
	m = protowire.AppendTag(m, field, protowire.BytesType)
	return protowire.AppendBytes(m, value)
}

func (m message) varint(field protowire.Number, value uint64) message {
	m = protowire.AppendTag(m, field, protowire.VarintType)
	return protowire.AppendVarint(m, value)
}

// mapEntry is one entry of a map<string, string> field.
func (m message) mapEntry(field protowire.Number, key, value string) message {
	return m.sub(field, message(nil).str(1, key).str(2, value))
}

// fields decodes one level of a message: every value of each field number (bytes or varint).
// A message that does not parse ends the program.
func fields(data []byte) (map[protowire.Number][][]byte, map[protowire.Number]uint64) {
	bytesFields, varints := map[protowire.Number][][]byte{}, map[protowire.Number]uint64{}
	for len(data) > 0 {
		number, kind, n := protowire.ConsumeTag(data)
		if n < 0 {
			fail(protowire.ParseError(n))
		}
		data = data[n:]
		switch kind {
		case protowire.BytesType:
			value, m := protowire.ConsumeBytes(data)
			if m < 0 {
				fail(protowire.ParseError(m))
			}
			bytesFields[number] = append(bytesFields[number], value)
			n = m
		case protowire.VarintType:
			value, m := protowire.ConsumeVarint(data)
			if m < 0 {
				fail(protowire.ParseError(m))
			}
			varints[number] = value
			n = m
		default:
			n = protowire.ConsumeFieldValue(number, kind, data)
			if n < 0 {
				fail(protowire.ParseError(n))
			}
		}
		data = data[n:]
	}
	return bytesFields, varints
}

func first(values map[protowire.Number][][]byte, field protowire.Number) []byte {
	if len(values[field]) == 0 {
		return nil
	}
	return values[field][0]
}

type client struct{ conn *grpc.ClientConn }

func (c client) call(method string, request message) []byte {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	in, out := []byte(request), []byte(nil)
	if err := c.conn.Invoke(ctx, "/runtime.v1.RuntimeService/"+method, &in, &out, grpc.ForceCodec(rawCodec{})); err != nil {
		fail(fmt.Errorf("%s: %w", method, err))
	}
	return out
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: cri-client <socket> status|runp|inspectp|stopp|rmp|run|stop|rm …")
		os.Exit(2)
	}
	socket, command, arguments := os.Args[1], os.Args[2], os.Args[3:]
	conn, err := grpc.Dial("unix://"+socket, grpc.WithInsecure())
	if err != nil {
		fail(err)
	}
	defer conn.Close()
	c := client{conn}
	switch command {
	case "status":
		c.status()
	case "runp":
		c.runPod(arguments)
	case "inspectp":
		c.inspectPod(argument(arguments, 0))
	case "stopp":
		c.call("StopPodSandbox", message(nil).str(1, argument(arguments, 0)))
	case "rmp":
		c.call("RemovePodSandbox", message(nil).str(1, argument(arguments, 0)))
	case "run":
		c.runContainer(arguments)
	case "stop":
		c.call("StopContainer", message(nil).str(1, argument(arguments, 0)).varint(2, 0))
	case "rm":
		c.call("RemoveContainer", message(nil).str(1, argument(arguments, 0)))
	default:
		fail(fmt.Errorf("unknown command %q", command))
	}
}

// status prints the NetworkReady condition of Status (what the kubelet marks a node Ready by).
func (c client) status() {
	response, _ := fields(c.call("Status", nil))
	runtimeStatus, _ := fields(first(response, 1))
	for _, raw := range runtimeStatus[1] {
		condition, flags := fields(raw)
		if string(first(condition, 1)) == "NetworkReady" {
			printJSON(map[string]interface{}{"ready": flags[2] != 0, "reason": string(first(condition, 3)),
				"message": string(first(condition, 4))})
			return
		}
	}
	fail(fmt.Errorf("Status has no NetworkReady condition"))
}

// sandboxConfig is the PodSandboxConfig the kubelet would send for a pod `name`.
func sandboxConfig(name string, options []string) message {
	metadata := message(nil).str(1, name).str(2, name+"-uid").str(3, "default").varint(4, 0)
	config := message(nil).sub(1, metadata)
	network := uint64(0) // POD: a network namespace of its own, attached through CNI
	for i := 0; i < len(options); i++ {
		switch options[i] {
		case "--host-network":
			network = 2 // NODE
		case "--port":
			i++
			mapping := argument(options, i)
			protocol := uint64(0) // TCP
			if strings.HasSuffix(mapping, "/udp") {
				protocol, mapping = 1, strings.TrimSuffix(mapping, "/udp")
			}
			ports := strings.SplitN(mapping, ":", 2)
			host, err1 := strconv.Atoi(ports[0])
			container, err2 := strconv.Atoi(ports[len(ports)-1])
			if len(ports) != 2 || err1 != nil || err2 != nil {
				fail(fmt.Errorf("--port wants host:container, not %q", mapping))
			}
			config = config.sub(5, message(nil).varint(1, protocol).varint(2, uint64(container)).varint(3, uint64(host)))
		default:
			fail(fmt.Errorf("unknown runp option %q", options[i]))
		}
	}
	// The kubelet names the pod's host after it, except in the node's namespaces (UTS too).
	if network != 2 {
		config = config.str(2, name)
	}
	config = config.mapEntry(6, "app", name)
	namespaces := message(nil).varint(1, network).varint(2, 0).varint(3, 0)
	return config.sub(8, message(nil).sub(2, message(nil).sub(1, namespaces)))
}

func (c client) runPod(arguments []string) {
	name := argument(arguments, 0)
	response, _ := fields(c.call("RunPodSandbox", message(nil).sub(1, sandboxConfig(name, arguments[1:]))))
	fmt.Println(string(first(response, 1)))
}

// inspectPod prints the pod's state, its IP and its network namespace path (from the verbose
// info containerd adds: the sandbox's runtime spec).
func (c client) inspectPod(id string) {
	response, _ := fields(c.call("PodSandboxStatus", message(nil).str(1, id).varint(2, 1)))
	status, statusVarints := fields(first(response, 1))
	network, _ := fields(first(status, 5))
	netns := ""
	for _, raw := range response[2] {
		entry, _ := fields(raw)
		if string(first(entry, 1)) != "info" {
			continue
		}
		var info struct {
			RuntimeSpec struct {
				Linux struct {
					Namespaces []struct{ Type, Path string }
				}
			}
		}
		if err := json.Unmarshal(first(entry, 2), &info); err != nil {
			fail(fmt.Errorf("PodSandboxStatus info: %w", err))
		}
		for _, namespace := range info.RuntimeSpec.Linux.Namespaces {
			if namespace.Type == "network" {
				netns = namespace.Path
			}
		}
	}
	state := map[uint64]string{0: "ready", 1: "notready"}[statusVarints[3]]
	printJSON(map[string]interface{}{"state": state, "ip": string(first(network, 1)), "netns": netns})
}

func (c client) runContainer(arguments []string) {
	pod, name, image := argument(arguments, 0), argument(arguments, 1), argument(arguments, 2)
	command := arguments[3:]
	config := message(nil).sub(1, message(nil).str(1, name).varint(2, 0)).sub(2, message(nil).str(1, image))
	for _, part := range command {
		config = config.str(3, part)
	}
	// The sandbox config is the pod's again, as the kubelet sends it: its name is what matters.
	podStatus, _ := fields(c.call("PodSandboxStatus", message(nil).str(1, pod)))
	status, _ := fields(first(podStatus, 1))
	metadata, _ := fields(first(status, 2))
	request := message(nil).str(1, pod).sub(2, config).sub(3, sandboxConfig(string(first(metadata, 1)), nil))
	response, _ := fields(c.call("CreateContainer", request))
	id := string(first(response, 1))
	c.call("StartContainer", message(nil).str(1, id))
	fmt.Println(id)
}

func argument(arguments []string, index int) string {
	if index >= len(arguments) {
		fail(fmt.Errorf("missing argument %d", index+1))
	}
	return arguments[index]
}

func printJSON(value interface{}) {
	text, err := json.Marshal(value)
	if err != nil {
		fail(err)
	}
	fmt.Println(string(text))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "cri-client:", err)
	os.Exit(1)
}
