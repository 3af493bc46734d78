// Command compose-check loads a compose file with the Compose Specification's
// own Go loader (the one `docker compose config` uses) and prints the
// normalized project as JSON. It exits 1 with the loader's error when the
// file is invalid: schema validation, interpolation, normalization and the
// consistency check (e.g. depends_on a missing service) are all on.
//
// No Docker engine is needed, so the project's tests can check its
// docker-compose.yml on a machine that cannot run it (worker/composeCheck.ts).
//
//	compose-check [-project-name NAME] [-project-directory DIR] FILE
//
// Interpolation sees an empty environment (no OS variables, no .env file),
// so the result depends on the file alone: `${VAR:-default}` takes its
// default, as on a machine where the operator set nothing.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	name := flag.String("project-name", "agent-hypervisor", "the project name (fixed, so the output does not depend on the folder's name)")
	dir := flag.String("project-directory", "", "where relative paths resolve (default: the file's folder)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: compose-check [-project-name NAME] [-project-directory DIR] FILE")
		os.Exit(2)
	}
	if err := run(*name, *dir, flag.Arg(0)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(name, dir, file string) error {
	file, err := filepath.Abs(file)
	if err != nil {
		return err
	}
	if dir == "" {
		dir = filepath.Dir(file)
	}
	options, err := cli.NewProjectOptions([]string{file},
		cli.WithName(name),
		cli.WithWorkingDirectory(dir),
		cli.WithInterpolation(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		return err
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		return err
	}
	out, err := project.MarshalJSON()
	if err != nil {
		return err
	}
	_, err = fmt.Println(string(out))
	return err
}
