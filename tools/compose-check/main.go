// Command compose-check loads a compose file with the Compose Specification's
// own Go loader (the one `docker compose config` uses) and prints the
// normalized project as JSON. It exits 1 with the loader's error when the
// file is invalid: schema validation, interpolation, normalization and the
// consistency check (e.g. depends_on a missing service) are all on.
//
// No Docker engine is needed, so the project's tests can check its
// docker-compose.yml on a machine that cannot run it (worker/composeCheck.ts).
//
//	compose-check [-project-name NAME] [-project-directory DIR] [-env NAME=VALUE]... FILE
//
// Interpolation sees only the -env variables (no OS variables, no .env file),
// so the result depends on the file and the flags alone: `${VAR:-default}`
// takes its default, and `${VAR:?message}` fails with the message, as on a
// machine where the operator set nothing else.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	name := flag.String("project-name", "agent-hypervisor", "the project name (fixed, so the output does not depend on the folder's name)")
	dir := flag.String("project-directory", "", "where relative paths resolve (default: the file's folder)")
	var env envFlags
	flag.Var(&env, "env", "NAME=VALUE: a variable interpolation sees (repeatable)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: compose-check [-project-name NAME] [-project-directory DIR] [-env NAME=VALUE]... FILE")
		os.Exit(2)
	}
	if err := run(*name, *dir, env, flag.Arg(0)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// envFlags collects -env NAME=VALUE flags.
type envFlags []string

func (e *envFlags) String() string { return strings.Join(*e, ",") }

func (e *envFlags) Set(v string) error {
	if i := strings.IndexByte(v, '='); i <= 0 {
		return fmt.Errorf("-env %q: expected NAME=VALUE", v)
	}
	*e = append(*e, v)
	return nil
}

func run(name, dir string, env []string, file string) error {
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
		cli.WithEnv(env),
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
