// Command temporal-ui serves Temporal's Web UI for a Temporal frontend of
// your choosing: the UI server the Temporal CLI embeds in its dev server
// (github.com/temporalio/ui-server/v2, the version CLI v1.5.1 pins), pointed
// at the hypervisor's cluster by `npm run cluster`.
//
//	temporal-ui --address 127.0.0.1:7233 --ip 127.0.0.1 --port 8233
package main

import (
	"flag"
	"log"
	"os"
	"os/signal"
	"syscall"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uiserveroptions "github.com/temporalio/ui-server/v2/server/server_options"
)

func main() {
	address := flag.String("address", "127.0.0.1:7233", "the Temporal frontend's gRPC address")
	ip := flag.String("ip", "127.0.0.1", "the address the UI listens on")
	port := flag.Int("port", 8233, "the port the UI listens on")
	namespace := flag.String("namespace", "default", "the namespace the UI opens")
	flag.Parse()

	ui := uiserver.NewServer(uiserveroptions.WithConfigProvider(&uiconfig.Config{
		Host:                *ip,
		Port:                *port,
		TemporalGRPCAddress: *address,
		EnableUI:            true,
		DefaultNamespace:    *namespace,
		CORS:                uiconfig.CORS{CookieInsecure: true},
		HideLogs:            true,
	}))
	go func() {
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
		<-stop
		ui.Stop()
	}()
	if err := ui.Start(); err != nil {
		log.Fatalf("temporal-ui: %v", err)
	}
}
