package event

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"strings"
	"text/template"
	"text/template/parse"
)

// escapeFunc is the function escapeActions appends to each action of a
// JSON template. Templates may call it, to no harm.
const escapeFunc = "json_escape"

// isJSON reports whether a Content-Type names JSON: application/json or a
// +json type.
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// escapeJSONString writes what an action printed as the inside of a JSON
// string: quotes, backslashes and control characters escaped, invalid
// UTF-8 replaced. <, > and & stay as they are, so a URL reads as before.
func escapeJSONString(args ...any) (string, error) {
	var text string
	if len(args) == 1 {
		if s, ok := args[0].(string); ok {
			text = s
		} else {
			text = fmt.Sprint(args[0])
		}
	} else {
		text = fmt.Sprint(args...)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(text); err != nil {
		return "", err
	}
	out := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	return string(out[1 : len(out)-1]), nil // without the quotes
}

// escapeActions makes every action of t (and of the templates it defines)
// pipe its value through escapeFunc, unless the action declares a variable
// (it prints nothing) or already ends with json or raw. This is what
// html/template does with its HTML escapers, done here for JSON.
func escapeActions(t *template.Template) {
	for _, tt := range t.Templates() {
		if tt.Tree != nil {
			escapeNode(tt.Tree.Root)
		}
	}
}

func escapeNode(n parse.Node) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			escapeNode(c)
		}
	case *parse.ActionNode:
		escapePipe(n.Pipe)
	case *parse.IfNode:
		escapeNode(n.List)
		escapeNode(n.ElseList)
	case *parse.RangeNode:
		escapeNode(n.List)
		escapeNode(n.ElseList)
	case *parse.WithNode:
		escapeNode(n.List)
		escapeNode(n.ElseList)
	}
}

func escapePipe(p *parse.PipeNode) {
	if p == nil || len(p.Decl) > 0 || p.IsAssign || len(p.Cmds) == 0 {
		return
	}
	last := p.Cmds[len(p.Cmds)-1]
	if len(last.Args) > 0 {
		if id, ok := last.Args[0].(*parse.IdentifierNode); ok {
			switch id.Ident {
			case "json", "raw", escapeFunc:
				return
			}
		}
	}
	p.Cmds = append(p.Cmds, &parse.CommandNode{
		NodeType: parse.NodeCommand,
		Pos:      p.Pos,
		Args:     []parse.Node{parse.NewIdentifier(escapeFunc).SetTree(nil).SetPos(p.Pos)},
	})
}
