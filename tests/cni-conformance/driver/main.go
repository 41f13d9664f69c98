// cni-driver runs CNI operations through libcni, the reference runtime library, exactly as a
// container runtime would: it validates the configuration (VERSION of each plugin), then runs
// ADD, CHECK or DEL for a single network (.conf) or a chained list (.conflist).
//
// Usage: cni-driver -op add|check|del|validate -conf FILE -netns PATH -id ID -ifname IF
//                   -path DIR[:DIR] -cache DIR [-args K=V;K=V] [-cap JSON]
// ADD prints the final result as JSON on stdout. Errors go to stderr with exit status 1.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/containernetworking/cni/libcni"
)

func fail(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "cni-driver: "+format+"\n", a...)
	os.Exit(1)
}

func main() {
	op := flag.String("op", "", "add, check, del or validate")
	confPath := flag.String("conf", "", "network configuration (.conf or .conflist)")
	netns := flag.String("netns", "", "network namespace path")
	id := flag.String("id", "", "container id")
	ifname := flag.String("ifname", "net1", "interface name")
	path := flag.String("path", "/usr/lib/cni", "plugin directories, ':'-separated")
	cache := flag.String("cache", "", "libcni cache directory")
	args := flag.String("args", "", "CNI_ARGS as K=V;K=V")
	capJSON := flag.String("cap", "", "capability args as JSON (runtimeConfig)")
	flag.Parse()

	data, err := os.ReadFile(*confPath)
	if err != nil {
		fail("read %s: %v", *confPath, err)
	}
	var list *libcni.NetworkConfigList
	if strings.HasSuffix(*confPath, ".conflist") {
		list, err = libcni.ConfListFromBytes(data)
	} else {
		var single *libcni.NetworkConfig
		single, err = libcni.ConfFromBytes(data)
		if err == nil {
			list, err = libcni.ConfListFromConf(single)
		}
	}
	if err != nil {
		fail("parse %s: %v", *confPath, err)
	}

	rt := &libcni.RuntimeConf{ContainerID: *id, NetNS: *netns, IfName: *ifname}
	for _, kv := range strings.Split(*args, ";") {
		if p := strings.SplitN(kv, "=", 2); len(p) == 2 {
			rt.Args = append(rt.Args, [2]string{p[0], p[1]})
		}
	}
	if *capJSON != "" {
		if err := json.Unmarshal([]byte(*capJSON), &rt.CapabilityArgs); err != nil {
			fail("-cap: %v", err)
		}
	}
	cni := libcni.NewCNIConfigWithCacheDir(strings.Split(*path, ":"), *cache, nil)
	ctx := context.Background()

	switch *op {
	case "validate":
		caps, err := cni.ValidateNetworkList(ctx, list)
		if err != nil {
			fail("validate: %v", err)
		}
		out, _ := json.Marshal(caps)
		fmt.Println(string(out))
	case "add":
		res, err := cni.AddNetworkList(ctx, list, rt)
		if err != nil {
			fail("ADD: %v", err)
		}
		out, err := json.Marshal(res)
		if err != nil {
			fail("encode result: %v", err)
		}
		fmt.Println(string(out))
	case "check":
		if err := cni.CheckNetworkList(ctx, list, rt); err != nil {
			fail("CHECK: %v", err)
		}
	case "del":
		if err := cni.DelNetworkList(ctx, list, rt); err != nil {
			fail("DEL: %v", err)
		}
	default:
		fail("unknown -op %q", *op)
	}
}
