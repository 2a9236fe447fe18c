// Command pulumi-language-python is the language host the Pulumi CLI starts to
// run a Python program.
//
// Upstream's host lives in its own module, which the Go module proxy we build
// from does not serve. This is a small host of our own over the same public
// pieces that upstream's is built from: the gRPC LanguageRuntime service and
// the Python toolchain package of github.com/pulumi/pulumi/sdk/v3, and the
// pulumi-language-python-exec script that sdk/v3 ships, which the build puts
// next to this binary. It reads the runtime options upstream reads
// (toolchain, virtualenv, typechecker) and ignores any other, as upstream
// does; it runs the program's entry point (the `main` option, "." by default)
// with that script.
//
// It reports no required packages: the engine then resolves each provider
// when the program first uses it (from $PATH, where the operator puts
// tools/engine/bin) and never tries to download one.
//
// It also runs plugins written in Python (RunPlugin), as upstream's host does:
// a policy pack (`pulumi preview --policy-pack DIR`: the engine finds this host
// on $PATH and asks it to run DIR, see NewPolicyAnalyzer in sdk/v3) runs as
// `python -u -m pulumi.policy ENGINE DIR`, behind sdk/v3's PolicyProxy, which
// receives the stack's configuration first and hands it to the pack in its
// environment (PULUMI_STACK, PULUMI_PROJECT, PULUMI_CONFIG, ...); any other
// plugin directory runs its __main__.py.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"

	sdk "github.com/pulumi/pulumi/sdk/v3"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/cmdutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/version"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"github.com/pulumi/pulumi/sdk/v3/python/toolchain"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

// The exec script signals with this exit code that it already showed the
// user an actionable error.
const exitAfterUserActionableMessage = 32

func main() {
	if err := run(os.Args[1:]); err != nil {
		cmdutil.Exit(err)
	}
}

func run(args []string) error {
	flags := flag.NewFlagSet("pulumi-language-python", flag.ContinueOnError)
	tracing := flags.String("tracing", "", "Emit tracing to a Zipkin-compatible tracing endpoint")
	executor := flags.String("use-executor", "", "Use this script instead of the one next to this binary")
	if err := flags.Parse(args); err != nil {
		return err
	}

	if *executor == "" {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("locating this executable: %w", err)
		}
		*executor = filepath.Join(filepath.Dir(self), "pulumi-language-python-exec")
	}
	if _, err := os.Stat(*executor); err != nil {
		return fmt.Errorf("missing executor: %w", err)
	}

	host := &languageHost{exec: *executor, tracing: *tracing}
	if flags.NArg() > 0 {
		host.engineAddress = flags.Arg(0)
	}

	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, host)
			return nil
		},
	})
	if err != nil {
		return fmt.Errorf("starting the language host RPC server: %w", err)
	}
	// The engine reads the port from our first line of output.
	fmt.Printf("%d\n", handle.Port)
	if err := <-handle.Done; err != nil {
		return fmt.Errorf("language host RPC stopped serving: %w", err)
	}
	return nil
}

type languageHost struct {
	pulumirpc.UnimplementedLanguageRuntimeServer

	exec          string
	engineAddress string
	tracing       string
}

// options maps the runtime options of Pulumi.yaml (or PulumiPolicy.yaml,
// PulumiPlugin.yaml) onto the toolchain's.
func options(info *pulumirpc.ProgramInfo) (toolchain.PythonOptions, error) {
	opts := toolchain.PythonOptions{Root: info.GetRootDirectory(), ProgramDir: info.GetProgramDirectory()}
	raw := info.GetOptions().AsMap()
	str := func(key string) (string, error) {
		v, ok := raw[key]
		if !ok {
			return "", nil
		}
		s, ok := v.(string)
		if !ok {
			return "", fmt.Errorf("%s option must be a string", key)
		}
		return s, nil
	}

	venv, err := str("virtualenv")
	if err != nil {
		return opts, err
	}
	opts.Virtualenv = venv

	tc, err := str("toolchain")
	if err != nil {
		return opts, err
	}
	switch tc {
	case "", "pip":
		opts.Toolchain = toolchain.Pip
	case "poetry":
		opts.Toolchain = toolchain.Poetry
	case "uv":
		opts.Toolchain = toolchain.Uv
	default:
		return opts, fmt.Errorf("unsupported toolchain option: %s", tc)
	}

	checker, err := str("typechecker")
	if err != nil {
		return opts, err
	}
	switch checker {
	case "":
	case "mypy":
		opts.Typechecker = toolchain.TypeCheckerMypy
	case "pyright":
		opts.Typechecker = toolchain.TypeCheckerPyright
	default:
		return opts, fmt.Errorf("unsupported typechecker option: %s", checker)
	}
	return opts, nil
}

func (h *languageHost) Handshake(
	ctx context.Context, req *pulumirpc.LanguageHandshakeRequest,
) (*pulumirpc.LanguageHandshakeResponse, error) {
	h.engineAddress = req.GetEngineAddress()
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (h *languageHost) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version.Version}, nil
}

func (h *languageHost) GetRequiredPackages(
	context.Context, *pulumirpc.GetRequiredPackagesRequest,
) (*pulumirpc.GetRequiredPackagesResponse, error) {
	return &pulumirpc.GetRequiredPackagesResponse{}, nil
}

func (h *languageHost) GetRequiredPlugins(
	context.Context, *pulumirpc.GetRequiredPluginsRequest,
) (*pulumirpc.GetRequiredPluginsResponse, error) {
	return &pulumirpc.GetRequiredPluginsResponse{}, nil
}

func (h *languageHost) InstallDependencies(
	req *pulumirpc.InstallDependenciesRequest, server pulumirpc.LanguageRuntime_InstallDependenciesServer,
) error {
	opts, err := options(req.GetInfo())
	if err != nil {
		return err
	}
	closer, stdout, stderr, err := rpcutil.MakeInstallDependenciesStreams(server, req.GetIsTerminal())
	if err != nil {
		return err
	}
	defer closer.Close()
	tc, err := toolchain.ResolveToolchain(opts)
	if err != nil {
		return err
	}
	if err := tc.InstallDependencies(server.Context(), req.GetInfo().GetProgramDirectory(),
		req.GetUseLanguageVersionTools(), true, stdout, stderr); err != nil {
		return err
	}
	return closer.Close()
}

func (h *languageHost) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	opts, err := options(req.GetInfo())
	if err != nil {
		return nil, err
	}
	tc, err := toolchain.ResolveToolchain(opts)
	if err != nil {
		return nil, err
	}
	if err := tc.ValidateVenv(ctx); err != nil {
		return nil, err
	}
	if opts.Typechecker != toolchain.TypeCheckerNone {
		return nil, errors.New("the typechecker option is not supported by this language host")
	}

	cmd, err := tc.Command(ctx, append([]string{h.exec}, h.arguments(req)...)...)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	configMap := req.GetConfig()
	if configMap == nil {
		configMap = map[string]string{}
	}
	config, err := json.Marshal(configMap)
	if err != nil {
		return nil, fmt.Errorf("serializing configuration: %w", err)
	}
	secretKeys := req.GetConfigSecretKeys()
	if secretKeys == nil {
		secretKeys = []string{}
	}
	secrets, err := json.Marshal(secretKeys)
	if err != nil {
		return nil, fmt.Errorf("serializing secret configuration keys: %w", err)
	}
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, "PULUMI_CONFIG="+string(config), "PULUMI_CONFIG_SECRET_KEYS="+string(secrets))

	if err := cmd.Run(); err != nil {
		// The program may die fast; make sure the engine sees what it printed.
		_ = os.Stdout.Sync()
		_ = os.Stderr.Sync()
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) {
			return &pulumirpc.RunResponse{
				Error: fmt.Sprintf("problem executing program (could not run language executor): %v", err),
			}, nil
		}
		status, ok := exitErr.Sys().(syscall.WaitStatus)
		switch {
		case ok && status.ExitStatus() == exitAfterUserActionableMessage:
			return &pulumirpc.RunResponse{Bail: true}, nil
		case ok:
			return &pulumirpc.RunResponse{
				Error: fmt.Sprintf("program exited with non-zero exit code: %d", status.ExitStatus()),
			}, nil
		default:
			return &pulumirpc.RunResponse{Error: fmt.Sprintf("program exited unexpectedly: %v", exitErr)}, nil
		}
	}
	return &pulumirpc.RunResponse{}, nil
}

// arguments is the command line of the exec script for one run.
func (h *languageHost) arguments(req *pulumirpc.RunRequest) []string {
	var args []string
	add := func(name, value string) {
		if value != "" {
			args = append(args, "--"+name, value)
		}
	}
	add("monitor", req.GetMonitorAddress())
	add("engine", h.engineAddress)
	add("project", req.GetProject())
	add("root_directory", req.GetInfo().GetRootDirectory())
	add("stack", req.GetStack())
	add("pwd", req.GetPwd())
	add("dry_run", strconv.FormatBool(req.GetDryRun()))
	add("parallel", strconv.Itoa(int(req.GetParallel())))
	add("tracing", h.tracing)
	add("organization", req.GetOrganization())
	args = append(args, req.GetInfo().GetEntryPoint())
	return append(args, req.GetArgs()...)
}

// RunPlugin runs a plugin written in Python from its directory, streaming its
// output and exit code back to the engine, as upstream's host does.
func (h *languageHost) RunPlugin(
	req *pulumirpc.RunPluginRequest, server pulumirpc.LanguageRuntime_RunPluginServer,
) error {
	ctx := server.Context()
	if req.GetAttachDebugger() {
		return errors.New("attaching a debugger to a plugin is not supported by this language host")
	}
	info := req.GetInfo()
	opts, err := options(info)
	if err != nil {
		return err
	}
	isPolicyPack := req.GetKind() == string(apitype.AnalyzerPlugin)
	if !isPolicyPack && opts.Virtualenv == "" && opts.Toolchain == toolchain.Pip {
		// Upstream runs other plugins only from a virtualenv of their own, `venv` by default.
		opts.Virtualenv = "venv"
	}
	tc, err := toolchain.ResolveToolchain(opts)
	if err != nil {
		return err
	}

	var args []string
	if isPolicyPack {
		// The arguments pulumi.policy expects: the engine's address, then the pack's folder.
		args = append([]string{"-u", "-m", "pulumi.policy"}, req.GetArgs()...)
		args = append(args, info.GetProgramDirectory())
	} else {
		mainPy := filepath.Join(info.GetProgramDirectory(), "__main__.py")
		if _, err := os.Stat(mainPy); err != nil {
			return fmt.Errorf("plugin %s has no __main__.py: this language host runs plugins from "+
				"their __main__.py only", info.GetProgramDirectory())
		}
		args = append([]string{info.GetProgramDirectory()}, req.GetArgs()...)
	}
	cmd, err := tc.Command(ctx, args...)
	if err != nil {
		return err
	}

	closer, stdout, stderr, err := rpcutil.MakeRunPluginStreams(server, false)
	if err != nil {
		return err
	}
	defer closer.Close()

	// Policy packs have always run from their own folder; other plugins from the caller's.
	cmd.Dir = req.GetPwd()
	var proxy *sdk.PolicyProxy
	if isPolicyPack {
		cmd.Dir = info.GetProgramDirectory()
		// The engine sends the stack's name and configuration to the analyzer after it
		// started; the pack reads them from its environment at start-up. The proxy answers
		// the engine first, then starts the pack with them and forwards every other call.
		proxy, stdout, err = sdk.NewPolicyProxy(ctx, stdout)
		if err != nil {
			return fmt.Errorf("starting the policy pack proxy: %w", err)
		}
		config, err := proxy.AwaitConfiguration(ctx)
		if err != nil {
			return fmt.Errorf("receiving the stack configuration for the policy pack: %w", err)
		}
		if config != nil {
			env, err := policyPackEnv(config)
			if err != nil {
				return err
			}
			cmd.Env = append(cmd.Env, env...)
		}
	}
	cmd.Env = append(cmd.Env, req.GetEnv()...)
	cmd.Stdout, cmd.Stderr = stdout, stderr

	if err := cmd.Start(); err != nil {
		return fmt.Errorf("problem executing plugin program (could not run language executor): %w", err)
	}
	if proxy != nil {
		err = proxy.Attach(ctx, cmd) // returns when the pack exits
	} else {
		err = cmd.Wait()
	}
	if err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			if status, ok := exitErr.Sys().(syscall.WaitStatus); ok {
				return server.Send(&pulumirpc.RunPluginResponse{
					Output: &pulumirpc.RunPluginResponse_Exitcode{Exitcode: int32(status.ExitStatus())},
				})
			}
			return fmt.Errorf("plugin exited unexpectedly: %w", exitErr)
		}
		return fmt.Errorf("running the plugin: %w", err)
	}
	return closer.Close()
}

// policyPackEnv is the stack context a Python policy pack reads from its
// environment when it starts (pulumi_policy configures the SDK from it).
func policyPackEnv(config *pulumirpc.AnalyzerStackConfigureRequest) ([]string, error) {
	var env []string
	add := func(key, value string) {
		if value != "" {
			env = append(env, key+"="+value)
		}
	}
	add("PULUMI_ORGANIZATION", config.GetOrganization())
	add("PULUMI_PROJECT", config.GetProject())
	add("PULUMI_STACK", config.GetStack())
	add("PULUMI_DRY_RUN", strconv.FormatBool(config.GetDryRun()))
	if config.GetConfig() != nil {
		encoded, err := json.Marshal(config.GetConfig())
		if err != nil {
			return nil, fmt.Errorf("serializing the stack configuration for the policy pack: %w", err)
		}
		add("PULUMI_CONFIG", string(encoded))
	}
	if keys := config.GetConfigSecretKeys(); len(keys) > 0 {
		encoded, err := json.Marshal(keys)
		if err != nil {
			return nil, fmt.Errorf("serializing the secret configuration keys: %w", err)
		}
		add("PULUMI_CONFIG_SECRET_KEYS", string(encoded))
	}
	return env, nil
}
