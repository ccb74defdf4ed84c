local s = string.rep("a", 40)
local p = string.rep("a-", 20) .. "b"
if string.find(s, p) then end
language "x" { image = "i", file = "f", run = {"r"} }
