// Command temporal-ui serves Temporal's Web UI for a Temporal frontend of
// your choosing: the UI server the Temporal CLI embeds in its dev server
// (github.com/temporalio/ui-server/v2, the version CLI v1.5.1 pins), pointed
// at the hypervisor's cluster by `npm run cluster`.
//
//	temporal-ui --address 127.0.0.1:7233 --ip 127.0.0.1 --port 8233
//	  [--tls-cert hv-ui.pem --tls-key hv-ui.key --tls-ca ca.pem --tls-server-name hv-temporal]
//
// The cluster's frontend requires mutual TLS: the UI presents its own
// certificate (CN=hv-ui), which the server's policy lets read only.
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
	tlsCert := flag.String("tls-cert", "", "client certificate (PEM) for the frontend's mutual TLS")
	tlsKey := flag.String("tls-key", "", "its key (PEM)")
	tlsCA := flag.String("tls-ca", "", "the CA of the frontend's certificate (PEM)")
	tlsServerName := flag.String("tls-server-name", "", "the name in the frontend's certificate")
	flag.Parse()
	if (*tlsCert == "") != (*tlsKey == "") || (*tlsCert != "" && *tlsCA == "") {
		log.Fatal("temporal-ui: --tls-cert, --tls-key and --tls-ca go together")
	}

	ui := uiserver.NewServer(uiserveroptions.WithConfigProvider(&uiconfig.Config{
		Host:                *ip,
		Port:                *port,
		TemporalGRPCAddress: *address,
		EnableUI:            true,
		DefaultNamespace:    *namespace,
		CORS:                uiconfig.CORS{CookieInsecure: true},
		HideLogs:            true,
		TLS: uiconfig.TLS{
			CertFile: *tlsCert, KeyFile: *tlsKey, CaFile: *tlsCA, ServerName: *tlsServerName,
			EnableHostVerification: *tlsCA != "",
		},
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
