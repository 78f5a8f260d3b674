package pubsubpb_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	pubsubpb "github.com/sfarchive/sfarchive/proto"
)

// fixtureEntry is one row of shared/pubsub/descriptor.json: a field, an enum
// value, an RPC or the file itself, extracted from Salesforce's own proto.
type fixtureEntry struct {
	Kind string `json:"kind"`

	// file
	Package string            `json:"package"`
	Syntax  string            `json:"syntax"`
	Options map[string]string `json:"options"`

	// field
	Message  string `json:"message"`
	Field    string `json:"field"`
	Number   int32  `json:"number"`
	Type     string `json:"type"`
	Label    string `json:"label"`
	JSONName string `json:"json_name"`
	WireType int    `json:"wire_type"`

	// enum_value
	Enum string `json:"enum"`
	Name string `json:"name"`

	// rpc
	Service         string `json:"service"`
	RPC             string `json:"rpc"`
	FullMethod      string `json:"full_method"`
	Request         string `json:"request"`
	Response        string `json:"response"`
	ClientStreaming bool   `json:"client_streaming"`
	ServerStreaming bool   `json:"server_streaming"`
}

func loadFixture(t *testing.T) []fixtureEntry {
	t.Helper()
	path := filepath.Join("..", "..", "shared", "pubsub", "descriptor.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read the wire fixture %s (shared/ must sit beside the repository): %v", path, err)
	}
	var entries []fixtureEntry
	if err := json.Unmarshal(data, &entries); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	return entries
}

// typeName renders a field's type the way descriptor.json does:
// "string", "int32", "message:ProducerEvent", "enum:ReplayPreset".
func typeName(fd protoreflect.FieldDescriptor) string {
	switch fd.Kind() {
	case protoreflect.MessageKind:
		return "message:" + string(fd.Message().Name())
	case protoreflect.EnumKind:
		return "enum:" + string(fd.Enum().Name())
	default:
		return fd.Kind().String()
	}
}

func wireType(fd protoreflect.FieldDescriptor) int {
	switch fd.Kind() {
	case protoreflect.StringKind, protoreflect.BytesKind, protoreflect.MessageKind:
		return 2
	default:
		return 0
	}
}

func TestDescriptorMatchesSalesforceProto(t *testing.T) {
	file := pubsubpb.File_pubsub_api_proto
	entries := loadFixture(t)

	wantFields := map[string]bool{}
	wantEnumValues := map[string]bool{}
	wantRPCs := map[string]bool{}
	for _, e := range entries {
		switch e.Kind {
		case "file":
			if got := string(file.Package()); got != e.Package {
				t.Errorf("package = %q, want %q", got, e.Package)
			}
			if got := file.Syntax().String(); got != e.Syntax {
				t.Errorf("syntax = %q, want %q", got, e.Syntax)
			}
		case "field":
			wantFields[e.Message+"."+e.Field] = true
			md := file.Messages().ByName(protoreflect.Name(e.Message))
			if md == nil {
				t.Errorf("message %s missing", e.Message)
				continue
			}
			fd := md.Fields().ByName(protoreflect.Name(e.Field))
			if fd == nil {
				t.Errorf("field %s.%s missing", e.Message, e.Field)
				continue
			}
			if int32(fd.Number()) != e.Number {
				t.Errorf("%s.%s number = %d, want %d", e.Message, e.Field, fd.Number(), e.Number)
			}
			if got := typeName(fd); got != e.Type {
				t.Errorf("%s.%s type = %s, want %s", e.Message, e.Field, got, e.Type)
			}
			label := "singular"
			if fd.Cardinality() == protoreflect.Repeated {
				label = "repeated"
			}
			if label != e.Label {
				t.Errorf("%s.%s label = %s, want %s", e.Message, e.Field, label, e.Label)
			}
			if fd.HasPresence() && fd.Kind() != protoreflect.MessageKind {
				t.Errorf("%s.%s has explicit presence; the real proto uses implicit presence", e.Message, e.Field)
			}
			if fd.JSONName() != e.JSONName {
				t.Errorf("%s.%s json name = %s, want %s", e.Message, e.Field, fd.JSONName(), e.JSONName)
			}
			if got := wireType(fd); got != e.WireType {
				t.Errorf("%s.%s wire type = %d, want %d", e.Message, e.Field, got, e.WireType)
			}
		case "enum_value":
			wantEnumValues[e.Enum+"."+e.Name] = true
			ed := file.Enums().ByName(protoreflect.Name(e.Enum))
			if ed == nil {
				t.Errorf("enum %s missing", e.Enum)
				continue
			}
			vd := ed.Values().ByName(protoreflect.Name(e.Name))
			if vd == nil {
				t.Errorf("enum value %s.%s missing", e.Enum, e.Name)
				continue
			}
			if int32(vd.Number()) != e.Number {
				t.Errorf("%s.%s = %d, want %d", e.Enum, e.Name, vd.Number(), e.Number)
			}
		case "rpc":
			wantRPCs[e.RPC] = true
			sd := file.Services().ByName(protoreflect.Name(e.Service))
			if sd == nil {
				t.Errorf("service %s missing", e.Service)
				continue
			}
			md := sd.Methods().ByName(protoreflect.Name(e.RPC))
			if md == nil {
				t.Errorf("rpc %s missing", e.RPC)
				continue
			}
			full := "/" + string(sd.FullName()) + "/" + string(md.Name())
			if full != e.FullMethod {
				t.Errorf("rpc path = %s, want %s", full, e.FullMethod)
			}
			if got := string(md.Input().Name()); got != e.Request {
				t.Errorf("%s request = %s, want %s", e.RPC, got, e.Request)
			}
			if got := string(md.Output().Name()); got != e.Response {
				t.Errorf("%s response = %s, want %s", e.RPC, got, e.Response)
			}
			if md.IsStreamingClient() != e.ClientStreaming || md.IsStreamingServer() != e.ServerStreaming {
				t.Errorf("%s streaming = client %v server %v, want client %v server %v", e.RPC,
					md.IsStreamingClient(), md.IsStreamingServer(), e.ClientStreaming, e.ServerStreaming)
			}
		default:
			t.Errorf("unknown fixture kind %q", e.Kind)
		}
	}
	if len(wantFields) == 0 || len(wantEnumValues) == 0 || len(wantRPCs) == 0 {
		t.Fatalf("fixture incomplete: %d fields, %d enum values, %d rpcs", len(wantFields), len(wantEnumValues), len(wantRPCs))
	}

	// Nothing extra: every field, enum value and RPC we declare is in the fixture.
	msgs := file.Messages()
	for i := 0; i < msgs.Len(); i++ {
		md := msgs.Get(i)
		if md.Oneofs().Len() != 0 {
			t.Errorf("message %s declares a oneof; the real proto has none", md.Name())
		}
		for j := 0; j < md.Fields().Len(); j++ {
			key := string(md.Name()) + "." + string(md.Fields().Get(j).Name())
			if !wantFields[key] {
				t.Errorf("field %s is not in Salesforce's proto", key)
			}
		}
	}
	enums := file.Enums()
	for i := 0; i < enums.Len(); i++ {
		ed := enums.Get(i)
		for j := 0; j < ed.Values().Len(); j++ {
			key := string(ed.Name()) + "." + string(ed.Values().Get(j).Name())
			if !wantEnumValues[key] {
				t.Errorf("enum value %s is not in Salesforce's proto", key)
			}
		}
	}
	methods := file.Services().ByName("PubSub").Methods()
	if methods.Len() != len(wantRPCs) {
		t.Errorf("service has %d RPCs, fixture has %d", methods.Len(), len(wantRPCs))
	}
	t.Logf("checked %d fields, %d enum values, %d RPCs", len(wantFields), len(wantEnumValues), len(wantRPCs))
}

// TestFileOptions keeps the Java options that other languages' stubs rely on.
func TestFileOptions(t *testing.T) {
	opts, ok := pubsubpb.File_pubsub_api_proto.Options().(*descriptorpb.FileOptions)
	if !ok || opts == nil {
		t.Fatal("file options missing")
	}
	for _, e := range loadFixture(t) {
		if e.Kind != "file" {
			continue
		}
		if got := opts.GetJavaPackage(); got != e.Options["java_package"] {
			t.Errorf("java_package = %q, want %q", got, e.Options["java_package"])
		}
		if got := opts.GetJavaOuterClassname(); got != e.Options["java_outer_classname"] {
			t.Errorf("java_outer_classname = %q, want %q", got, e.Options["java_outer_classname"])
		}
		if got := fmt.Sprint(opts.GetJavaMultipleFiles()); got != e.Options["java_multiple_files"] {
			t.Errorf("java_multiple_files = %q, want %q", got, e.Options["java_multiple_files"])
		}
	}
}
