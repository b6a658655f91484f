# {{rule-why}}
:if ([:len [{{rule-menu}}/find where comment={{q rule-comment}}]] = 0) do={
  :local first [{{rule-menu}}/find where chain=prerouting and dynamic=no]
  :if ([:len $first] > 0) do={
    {{rule-menu}}/add chain=prerouting action=drop {{rule-match}} comment={{q rule-comment}} place-before=[:pick $first 0]
  } else={
    {{rule-menu}}/add chain=prerouting action=drop {{rule-match}} comment={{q rule-comment}}
  }
}
{{rule-menu}}/set [find where comment={{q rule-comment}}] {{rule-match}}
