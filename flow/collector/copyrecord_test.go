package collector

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/flowshield/flowshield/flow"
)

// TestCopyRecord fails when a field is added to flow.Record and not to
// copyRecord: every field is set to a distinct non-zero value.
func TestCopyRecord(t *testing.T) {
	var src flow.Record
	v := reflect.ValueOf(&src).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			f.SetUint(uint64(i + 1))
		case reflect.Int64:
			f.SetInt(int64(i + 1))
		case reflect.Struct:
			if f.Type() != reflect.TypeOf(netip.Addr{}) {
				t.Fatalf("field %s of type %s: extend this test", v.Type().Field(i).Name, f.Type())
			}
			f.Set(reflect.ValueOf(netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)})))
		default:
			t.Fatalf("field %s of kind %s: extend this test", v.Type().Field(i).Name, f.Kind())
		}
	}
	var dst flow.Record
	copyRecord(&dst, &src)
	if dst != src {
		t.Fatalf("copyRecord missed a field:\n got %+v\nwant %+v", dst, src)
	}
}
