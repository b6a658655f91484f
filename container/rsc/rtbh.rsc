# RTBH (ACTION includes blackhole): flowshield adds blackhole routes for the
# attacked /32 (/128). To have an upstream drop the traffic before your link,
# announce them over BGP with the BLACKHOLE community 65535:666 (RFC 7999;
# many providers want their own community instead, and the peer must accept
# host routes from you). A RouterOS 7 example, to adapt (not run by this
# script; "upstream" is your BGP connection):
#{{rtbh-rules}}
# /routing/filter/rule/add chain=flowshield-rtbh rule="jump your-existing-output-chain"
# /routing/bgp/connection/set [find name=upstream] output.redistribute=static output.filter-chain=flowshield-rtbh
