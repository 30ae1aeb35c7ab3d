package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3"; otherwise the module
// version of `go install …@v1.2.3` is used, and "devel" for a build from a work tree.
var version string

// buildVersion returns the version, the commit (with "-modified" when the work tree had
// changes) and the Go version the binary was built with; "devel" for what is not known.
func buildVersion() (ver, commit, goVersion string) {
	ver, commit, goVersion = version, "", runtime.Version()
	info, ok := debug.ReadBuildInfo()
	if ok {
		if ver == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			ver = info.Main.Version
		}
		if info.GoVersion != "" {
			goVersion = info.GoVersion
		}
		modified := false
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if commit != "" && modified {
			commit += "-modified"
		}
	}
	if ver == "" {
		ver = "devel"
	}
	if commit == "" {
		commit = "devel"
	}
	return ver, commit, goVersion
}

func runVersion(e *env, args []string) error {
	fs, _ := newFlags(e, "version", "")
	if err := noPositional(fs, args); err != nil {
		return err
	}
	ver, commit, goVersion := buildVersion()
	fmt.Fprintf(e.stdout, "version: %s\ncommit:  %s\ngo:      %s %s/%s\n", ver, commit, goVersion, runtime.GOOS, runtime.GOARCH)
	return nil
}
