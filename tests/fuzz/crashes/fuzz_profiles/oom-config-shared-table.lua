local x = {}
for i = 1, 30 do x = {x, x} end
settings = x
