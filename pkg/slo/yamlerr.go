package slo

import "github.com/rootuip/sre/pkg/yamlerr"

// yamlError turns a yaml.v3 syntax error into an Error at the line of the
// problem (yamlerr.Syntax).
func yamlError(data []byte, file string, err error) *Error {
	msg, line, col, ok := yamlerr.Syntax(data, err)
	if !ok {
		return &Error{File: file, Msg: err.Error()}
	}
	return &Error{File: file, Msg: "invalid YAML: " + msg, Line: line, Column: col}
}
