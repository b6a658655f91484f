# /routing/filter/rule/add chain=flowshield-rtbh rule="{{rtbh-rule}}"
