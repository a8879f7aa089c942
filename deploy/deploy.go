// Package deploy holds the manifests that install Bosun's components, so
// that tests (and the product) use exactly the files that ship.
package deploy

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

//go:embed agent/*.yaml
var agentFS embed.FS

// AgentManifests returns the agent's YAML documents in apply order
// (namespace, service account, RBAC, Deployment), with their file names.
func AgentManifests() ([]Document, error) {
	files, err := agentFiles()
	if err != nil {
		return nil, err
	}
	var out []Document
	for _, f := range files {
		data, err := agentFS.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading %s, %w", f, err)
		}
		for i, doc := range strings.Split(string(data), "\n---\n") {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			out = append(out, Document{Source: fmt.Sprintf("%s#%d", f, i), YAML: []byte(doc)})
		}
	}
	return out, nil
}

// Document is one YAML document and where it came from.
type Document struct {
	Source string
	YAML   []byte
}

// AgentOptions choose what RenderAgent installs.
type AgentOptions struct {
	// Controllers are the controllers the Deployment runs (required;
	// internal/agent.RenderManifests defaults to the downscaler alone, as
	// the agent's own default).
	Controllers []string
	// RBAC are the files (agent/NN-rbac-NAME.yaml) with the RBAC of
	// Controllers: the agent's registration table names them
	// (internal/agent.RenderManifests fills them in). Other RBAC files
	// are left out (least privilege); agent/10-rbac-base.yaml, which every
	// agent needs, is always in.
	RBAC []string
	// Cloud are the controllers among Controllers that act on the cloud
	// (the registration table says which); they need --provider=aws and
	// its flags in Args.
	Cloud []string
	// Namespace replaces bosun-system (default bosun-system).
	Namespace string
	// Image replaces the container image (default as shipped).
	Image string
	// Args are added to the agent's command line after --controllers; one
	// that names a flag the shipped Deployment already passes (such as
	// --default-uptime=...) replaces that argument instead.
	Args []string
	// AWSRoleARN, if set, binds the agent's service account to this IAM
	// role through IRSA (annotation eks.amazonaws.com/role-arn; policy
	// deploy/iam/agent.json). Empty with --provider=aws: EKS Pod Identity
	// or node credentials, set up outside these manifests.
	AWSRoleARN string
}

// irsaAnnotation binds a service account to an IAM role (IRSA).
const irsaAnnotation = "eks.amazonaws.com/role-arn"

const (
	shippedNamespace   = "bosun-system"
	shippedImage       = "ghcr.io/bosun-platform/bosun:latest"
	shippedControllers = "--controllers=downscaler"
	argIndent          = "        - "
	// baseRBAC is the RBAC every agent needs (its Lease, Events).
	baseRBAC = "agent/10-rbac-base.yaml"
)

// RenderAgent returns the agent's manifests as one multi-document YAML
// stream, with the RBAC files o.RBAC only (least privilege). Which
// controllers exist, which file holds whose RBAC, and which controllers
// act on the cloud is the agent's registration table's to say: use
// internal/agent.RenderManifests. The controllers in o.Cloud run in a pod
// only against AWS (Args carry --provider=aws, --cluster, --region and,
// for the interruption handler, --aws-queue-url; docs/aws.md); with the
// local cloud they are refused: it serves the machine of `bosun up` and no
// pod (no cloud.json, no $HOME there), so such a Deployment could not
// start.
func RenderAgent(o AgentOptions) ([]byte, error) {
	if len(o.Controllers) == 0 {
		return nil, fmt.Errorf("no controllers to install")
	}
	if o.Namespace == "" {
		o.Namespace = shippedNamespace
	}
	want := map[string]bool{}
	for _, f := range o.RBAC {
		if !isRBACFile(f) {
			return nil, fmt.Errorf("RBAC file %q: expected agent/NN-rbac-NAME.yaml", f)
		}
		if _, err := agentFS.ReadFile(f); err != nil {
			return nil, fmt.Errorf("RBAC file %q: %w", f, err)
		}
		want[f] = true
	}
	if len(o.Cloud) > 0 {
		if err := checkAWSArgs(o.Cloud, o.Args); err != nil {
			return nil, err
		}
	}
	if o.AWSRoleARN != "" && argValue(o.Args, "provider") != "aws" {
		return nil, fmt.Errorf("AWS role %s: the agent runs with --provider=aws only; add --arg=--provider=aws and the AWS flags, or drop the role", o.AWSRoleARN)
	}
	docs, err := AgentManifests()
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	for _, d := range docs {
		file, _, _ := strings.Cut(d.Source, "#")
		if isRBACFile(file) && file != baseRBAC && !want[file] {
			continue
		}
		text := strings.ReplaceAll(string(d.YAML), "namespace: "+shippedNamespace, "namespace: "+o.Namespace)
		text = strings.ReplaceAll(text, "name: "+shippedNamespace+"\n", "name: "+o.Namespace+"\n")
		if o.Image != "" {
			text = strings.ReplaceAll(text, "image: "+shippedImage, "image: "+o.Image)
		}
		if strings.Contains(text, argIndent+shippedControllers+"\n") {
			if text, err = agentArgs(text, o.Controllers, o.Args); err != nil {
				return nil, err
			}
		}
		if o.AWSRoleARN != "" && file == "agent/01-serviceaccount.yaml" {
			sa := "  name: bosun-agent\n  namespace: " + o.Namespace + "\n"
			text = strings.Replace(text, sa, sa+"  annotations:\n    "+irsaAnnotation+": "+yamlString(o.AWSRoleARN)+"\n", 1)
		}
		b.WriteString("---\n# Source: " + d.Source + "\n")
		b.WriteString(strings.TrimSpace(text) + "\n")
	}
	return []byte(b.String()), nil
}

// agentArgs sets the agent's command line in the shipped Deployment's text:
// --controllers, then each extra argument either in place of the shipped
// argument for the same flag or, for a flag not shipped, after
// --controllers. (Appending an override after the shipped argument would
// lose it: the last value of a flag wins, and the shipped
// --default-uptime=always comes later.)
func agentArgs(text string, controllers, extra []string) (string, error) {
	lines := strings.Split(text, "\n")
	var added []string
	for _, a := range extra {
		name := flagName(a)
		if name == "" {
			return "", fmt.Errorf("--arg %q: expected a flag such as --default-uptime=VALUE", a)
		}
		if name == "--controllers" {
			return "", fmt.Errorf("--arg %q: choose the controllers with --controllers, which also selects their RBAC", a)
		}
		replaced := false
		for i, l := range lines {
			shipped, ok := strings.CutPrefix(l, argIndent)
			if ok && flagName(shipped) == name {
				lines[i] = argIndent + yamlString(a)
				replaced = true
			}
		}
		if !replaced {
			added = append(added, argIndent+yamlString(a))
		}
	}
	for i, l := range lines {
		if l == argIndent+shippedControllers {
			head := append(append([]string{}, lines[:i]...), argIndent+"--controllers="+strings.Join(controllers, ","))
			lines = append(append(head, added...), lines[i+1:]...)
			break
		}
	}
	return strings.Join(lines, "\n"), nil
}

// flagName returns "--name" of "--name=value" or "--name", or "" for an
// argument that is not a long flag.
func flagName(arg string) string {
	arg = strings.Trim(arg, `"`)
	if !strings.HasPrefix(arg, "--") || len(arg) == 2 {
		return ""
	}
	name, _, _ := strings.Cut(arg, "=")
	return name
}

// yamlString quotes an argument for a YAML list item.
func yamlString(s string) string {
	b, _ := json.Marshal(s) // a JSON string is a valid YAML scalar
	return string(b)
}

// isRBACFile reports whether file holds RBAC rules (agent/NN-rbac-*.yaml).
func isRBACFile(file string) bool {
	base := path.Base(file)
	_, rest, ok := strings.Cut(base, "-")
	return ok && strings.HasPrefix(file, "agent/") && strings.HasPrefix(rest, "rbac-") && strings.HasSuffix(base, ".yaml")
}

// RBACFiles returns the files with RBAC rules, sorted, agent/10-rbac-base.yaml
// (always installed) left out.
func RBACFiles() ([]string, error) {
	files, err := fs.Glob(agentFS, "agent/*.yaml")
	if err != nil {
		return nil, fmt.Errorf("listing agent manifests, %w", err)
	}
	var out []string
	for _, f := range files {
		if isRBACFile(f) && f != baseRBAC {
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return out, nil
}

// checkAWSArgs accepts capacity controllers only with --provider=aws and
// the flags the AWS provider needs in a pod.
func checkAWSArgs(capacity []string, args []string) error {
	if argValue(args, "provider") != "aws" {
		return fmt.Errorf("controllers %s: they act on the cloud, and in a pod only the AWS provider can reach it: add --arg=--provider=aws --arg=--cluster=ID --arg=--region=REGION --arg=--aws-queue-url=URL (docs/aws.md); the local cloud (--provider local) is reached on the machine that runs `bosun up`, so run them there with `bosun agent --kubeconfig KUBECONFIG --controllers %s --provider local --cluster ID`",
			strings.Join(capacity, ", "), strings.Join(capacity, ","))
	}
	var missing []string
	for _, f := range []string{"cluster", "region"} {
		if argValue(args, f) == "" {
			missing = append(missing, "--"+f)
		}
	}
	for _, c := range capacity {
		if c == "interruption" && argValue(args, "aws-queue-url") == "" {
			missing = append(missing, "--aws-queue-url")
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("controllers %s with --provider=aws: %s missing; expected the fleet cluster ID, its AWS region and (interruption) its SQS queue URL as --arg values", strings.Join(capacity, ", "), strings.Join(missing, ", "))
	}
	return nil
}

// argValue returns the last value of --name=value or --name value in args.
func argValue(args []string, name string) string {
	v := ""
	for i, a := range args {
		if x, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			v = x
		} else if a == "--"+name && i+1 < len(args) {
			v = args[i+1]
		}
	}
	return v
}
