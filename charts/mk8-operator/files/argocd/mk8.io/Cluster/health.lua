-- ArgoCD health of an mk8.io Cluster. Runs in ArgoCD's Lua 5.1 sandbox: base, table, package
-- and a safe os only, so no string or math library and no string methods.
local hs = {}

local function find_condition(conditions, wanted)
  if conditions == nil then
    return nil
  end
  for _, condition in ipairs(conditions) do
    if condition.type == wanted then
      return condition
    end
  end
  return nil
end

local function message_or(condition, fallback)
  if condition ~= nil and condition.message ~= nil and condition.message ~= "" then
    return condition.message
  end
  return fallback
end

-- Ready reasons the controller sets when nothing improves until a person acts: an invalid spec,
-- a missing or unusable Secret, a provider this operator lacks, or AWS refusing or failing the cluster.
local needs_a_person = {
  InvalidSpec = true,
  SecretMissing = true,
  SecretInvalid = true,
  ProviderUnavailable = true,
  ControlPlaneFailed = true,
  OwnershipConflict = true,
  AwsRequestRejected = true,
  VersionChangeRefused = true,
}

local generation = obj.metadata.generation
local status = obj.status
if status == nil or status.observedGeneration == nil
    or (generation ~= nil and status.observedGeneration < generation) then
  hs.status = "Progressing"
  if generation ~= nil then
    hs.message = "Waiting for the controller to observe generation " .. generation
  else
    hs.message = "Waiting for the controller to observe this Cluster"
  end
  return hs
end

local ready = find_condition(status.conditions, "Ready")

-- The controller sets phase Failed whenever the provider reports a failure that needs attention.
if status.phase == "Failed" or (ready ~= nil and ready.status == "False" and needs_a_person[ready.reason]) then
  hs.status = "Degraded"
  hs.message = message_or(ready, "The Cluster's provider reported a failure")
  return hs
end

-- A paused Cluster is left alone by the controller, which then writes no Ready condition.
if obj.spec ~= nil and obj.spec.paused == true then
  hs.status = "Suspended"
  hs.message = message_or(find_condition(status.conditions, "Paused"), "spec.paused is true")
  return hs
end

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = message_or(ready, "Ready")
  return hs
end

hs.status = "Progressing"
hs.message = message_or(ready, "Waiting for the Ready condition")
return hs
