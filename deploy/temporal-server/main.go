// Command temporal-server is the Temporal server 1.29.1 (go.temporal.io/server,
// started as its own cmd/server starts it) with the hypervisor's access policy
// built in: mutual TLS on the frontend, a claim mapper that names each caller
// by its client certificate, and an authorizer (policy.go) under which only
// the hypervisor's worker may terminate, reset, signal-with-start or
// cron-start workflows, while agents' clients may send updates, signals and
// queries and start a plain session.
//
//	temporal-server --root DIR --config config --env NAME start
//	temporal-server certs --dir DIR [--hosts localhost,127.0.0.1,temporal] [--agents hv-agent]
//
// There is no --allow-no-auth: `start` refuses a configuration whose frontend
// does not require client certificates (global.tls.frontend.server
// requireClientAuth with a client CA), so the policy can never be bypassed by
// a missing TLS section. `certs` writes a private CA and the certificates the
// cluster uses (certs.go).
package main

import (
	"fmt"
	stdlog "log"
	"os"
	"path"
	"strings"
	_ "time/tzdata" // embed tzdata as a fallback

	"github.com/urfave/cli/v2"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/build"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/headers"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
	_ "go.temporal.io/server/common/persistence/sql/sqlplugin/postgresql" // the cluster's persistence
	_ "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"     // handy for a local try
	"go.temporal.io/server/temporal"
)

func main() {
	if err := buildCLI().Run(os.Args); err != nil {
		stdlog.Fatal(err)
	}
}

// checkTLS refuses a configuration under which a client could reach the
// frontend without a certificate the cluster's CA signed.
func checkTLS(cfg *config.Config) error {
	s := cfg.Global.TLS.Frontend.Server
	if (s.CertFile == "" && s.CertData == "") || (s.KeyFile == "" && s.KeyData == "") {
		return fmt.Errorf("global.tls.frontend.server needs certFile and keyFile: this server only serves mutual TLS")
	}
	if !s.RequireClientAuth || (len(s.ClientCAFiles) == 0 && len(s.ClientCAData) == 0) {
		return fmt.Errorf("global.tls.frontend.server needs requireClientAuth: true and clientCaFiles: callers are named by their certificates")
	}
	if cfg.Global.Authorization.Authorizer != "" || cfg.Global.Authorization.ClaimMapper != "" {
		return fmt.Errorf("global.authorization.authorizer/claimMapper must be empty: this server always uses the hypervisor's own (policy.go)")
	}
	return nil
}

func buildCLI() *cli.App {
	app := cli.NewApp()
	app.Name = "temporal-server"
	app.Usage = "Temporal server with the agent hypervisor's mTLS access policy"
	app.Version = headers.ServerVersion
	app.ArgsUsage = " "
	app.Flags = []cli.Flag{
		&cli.StringFlag{Name: "root", Aliases: []string{"r"}, Value: ".", Usage: "root directory of execution environment", EnvVars: []string{config.EnvKeyRoot}},
		&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Value: "config", Usage: "config dir path relative to root", EnvVars: []string{config.EnvKeyConfigDir}},
		&cli.StringFlag{Name: "env", Aliases: []string{"e"}, Value: "development", Usage: "runtime environment", EnvVars: []string{config.EnvKeyEnvironment}},
		&cli.StringFlag{Name: "zone", Aliases: []string{"az"}, Usage: "availability zone", EnvVars: []string{config.EnvKeyAvailabilityZone, config.EnvKeyAvailabilityZoneTypo}},
	}

	app.Commands = []*cli.Command{
		{
			Name:  "render-config",
			Usage: "Render server config template",
			Action: func(c *cli.Context) error {
				cfg, err := config.LoadConfig(c.String("env"), path.Join(c.String("root"), c.String("config")), c.String("zone"))
				if err != nil {
					return cli.Exit(fmt.Errorf("Unable to load configuration: %w", err), 1)
				}
				fmt.Println(cfg.String())
				return nil
			},
		},
		{
			Name:  "certs",
			Usage: "Write a private CA and the cluster's certificates into a folder (existing files are kept)",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "dir", Required: true, Usage: "where the PEM files go (keys are written 0600)"},
				&cli.StringFlag{Name: "hosts", Value: "localhost,127.0.0.1,temporal," + ServerName, Usage: "DNS names and IPs the frontend's certificate is valid for"},
				&cli.StringFlag{Name: "agents", Value: "hv-agent", Usage: "comma-separated common names of agent-client certificates to issue"},
			},
			Action: func(c *cli.Context) error {
				written, err := WriteCerts(c.String("dir"), splitList(c.String("hosts")), splitList(c.String("agents")))
				if err != nil {
					return cli.Exit(err.Error(), 1)
				}
				for _, f := range written {
					fmt.Println(f)
				}
				return nil
			},
		},
		{
			Name:  "start",
			Usage: "Start Temporal server",
			Flags: []cli.Flag{
				&cli.StringSliceFlag{Name: "service", Aliases: []string{"svc"}, Value: cli.NewStringSlice(temporal.DefaultServices...), Usage: "service(s) to start"},
			},
			Before: func(c *cli.Context) error {
				if c.Args().Len() > 0 {
					return cli.Exit("ERROR: start command doesn't support arguments. Use --service flag instead.", 1)
				}
				return nil
			},
			Action: func(c *cli.Context) error {
				cfg, err := config.LoadConfig(c.String("env"), path.Join(c.String("root"), c.String("config")), c.String("zone"))
				if err != nil {
					return cli.Exit(fmt.Sprintf("Unable to load configuration: %v.", err), 1)
				}
				if err := checkTLS(cfg); err != nil {
					return cli.Exit(fmt.Sprintf("Refusing to start: %v", err), 1)
				}
				logger := log.NewZapLogger(log.BuildZapLogger(cfg.Log))
				logger.Info("Build info.",
					tag.NewStringTag("go-version", build.InfoData.GoVersion),
					tag.NewStringTag("server-version", headers.ServerVersion),
					tag.NewStringTag("authorizer", "agent-hypervisor mTLS policy"),
				)

				var dynamicConfigClient dynamicconfig.Client
				if cfg.DynamicConfigClient != nil {
					dynamicConfigClient, err = dynamicconfig.NewFileBasedClient(cfg.DynamicConfigClient, logger, temporal.InterruptCh())
					if err != nil {
						return cli.Exit(fmt.Sprintf("Unable to create dynamic config client. Error: %v", err), 1)
					}
				} else {
					dynamicConfigClient = dynamicconfig.NewNoopClient()
				}

				s, err := temporal.NewServer(
					temporal.ForServices(c.StringSlice("service")),
					temporal.WithConfig(cfg),
					temporal.WithDynamicConfigClient(dynamicConfigClient),
					temporal.WithLogger(logger),
					temporal.InterruptOn(temporal.InterruptCh()),
					temporal.WithAuthorizer(NewAuthorizer(logger)),
					temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return NewClaimMapper() }),
				)
				if err != nil {
					return cli.Exit(fmt.Sprintf("Unable to create server. Error: %v.", err), 1)
				}
				if err := s.Start(); err != nil {
					return cli.Exit(fmt.Sprintf("Unable to start server. Error: %v", err), 1)
				}
				return cli.Exit("All services are stopped.", 0)
			},
		},
	}
	return app
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
